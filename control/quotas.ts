import {
  DEFAULT_NAMESPACE,
  type FunctionRecord,
  type FunctionStore,
  HearthError,
  type NamespaceQuotas,
  type NamespaceStore,
} from "../protocol/index.ts";

export interface QuotaDeps {
  readonly store: FunctionStore;
  readonly namespaces: NamespaceStore;
}

/** What a deploy adds to its namespace. */
export interface DeployUse {
  /** The function deployed: its own current bundle does not count against the new one. */
  readonly fn: string;
  readonly namespace: string;
  /** The size of the bundle it stores (the prepared script). */
  readonly bundleBytes: number;
}

/** A namespace's use of its deploy-time quotas. */
export interface NamespaceUsage {
  readonly functions: number;
  readonly bundleBytes: number;
}

/** Bundle bytes a function holds: its version's, and a canary's when one runs beside it. */
function bytesOf(record: FunctionRecord): number {
  return record.bundleBytes + (record.canary?.bundleBytes ?? 0);
}

/** Functions and bundle bytes of each namespace, from the function records. */
export function usageByNamespace(records: readonly FunctionRecord[], except?: string): Map<string, NamespaceUsage> {
  const usage = new Map<string, NamespaceUsage>();
  for (const record of records) {
    if (record.name === except) continue;
    const ns = record.namespace ?? DEFAULT_NAMESPACE;
    const held = usage.get(ns) ?? { functions: 0, bundleBytes: 0 };
    usage.set(ns, { functions: held.functions + 1, bundleBytes: held.bundleBytes + bytesOf(record) });
  }
  return usage;
}

/**
 * Throws ERR_QUOTA_EXCEEDED when a deploy would take its namespace past its `functions` or
 * `bundleBytes` quota, naming the quota, the use and the limit; ERR_NAMESPACE_NOT_FOUND when the
 * namespace does not exist. A redeploy replaces the function's own bundle, so only the difference
 * counts, and it never counts as one more function. Namespaces without these quotas cost one KV read.
 *
 * Not transactional: two deploys racing for the last slot can both pass. Quotas bound what a team
 * holds, they are not a security boundary, and a lock per namespace would serialize every deploy.
 *
 * @example
 * await checkDeployQuota(deps, { fn: "hello", namespace: "team-a", bundleBytes: script.byteLength });
 */
export async function checkDeployQuota(deps: QuotaDeps, deploy: DeployUse): Promise<void> {
  const record = await deps.namespaces.get(deploy.namespace);
  if (!record && deploy.namespace !== DEFAULT_NAMESPACE) {
    throw new HearthError("ERR_NAMESPACE_NOT_FOUND", `Namespace ${deploy.namespace} does not exist`);
  }
  const quotas: NamespaceQuotas = record?.quotas ?? {};
  if (quotas.functions === undefined && quotas.bundleBytes === undefined) return;
  const usage = usageByNamespace(await deps.store.list(), deploy.fn).get(deploy.namespace) ?? {
    functions: 0,
    bundleBytes: 0,
  };
  const hint = `raise it with \`hearth namespaces set ${deploy.namespace}\`, or remove functions`;
  if (quotas.functions !== undefined && usage.functions + 1 > quotas.functions) {
    throw new HearthError(
      "ERR_QUOTA_EXCEEDED",
      `Namespace ${deploy.namespace} is at its functions quota: ${usage.functions} deployed besides ${deploy.fn}, limit ${quotas.functions} (${hint})`,
    );
  }
  if (quotas.bundleBytes !== undefined && usage.bundleBytes + deploy.bundleBytes > quotas.bundleBytes) {
    throw new HearthError(
      "ERR_QUOTA_EXCEEDED",
      `Namespace ${deploy.namespace} would be over its bundleBytes quota: ${usage.bundleBytes} bytes held besides ${deploy.fn}, + ${deploy.bundleBytes} = ${usage.bundleBytes + deploy.bundleBytes}, limit ${quotas.bundleBytes} (${hint})`,
    );
  }
}
