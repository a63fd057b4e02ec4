import { DEFAULT_NAMESPACE, HearthError, type Scope } from "../protocol/index.ts";

/**
 * Who a request acts as: a token's scopes, expanded once (when the token is loaded) into sets, so a
 * check is a set lookup. `deploy:<ns>` implies read and invoke in `<ns>`.
 */
export interface Principal {
  /** The token's name, or "bootstrap" for the operator's HEARTH_TOKEN. */
  readonly name: string;
  /** The token's public id; null for the bootstrap token. */
  readonly tokenId: string | null;
  readonly admin: boolean;
  /** `read`: every namespace. */
  readonly readAll: boolean;
  readonly read: ReadonlySet<string>;
  readonly deploy: ReadonlySet<string>;
  readonly invoke: ReadonlySet<string>;
}

/**
 * What a route needs in a namespace: `read` (GET routes), `deploy` (every other method), `invoke`
 * (a private function), `status` (an async invocation's status: readers and invokers alike).
 */
export type Right = "read" | "deploy" | "invoke" | "status";

/** Expands a token's scopes into a Principal. */
export function principalOf(name: string, tokenId: string | null, scopes: readonly Scope[]): Principal {
  const read = new Set<string>();
  const deploy = new Set<string>();
  const invoke = new Set<string>();
  for (const scope of scopes) {
    const colon = scope.indexOf(":");
    const ns = scope.slice(colon + 1);
    if (scope.startsWith("read:")) read.add(ns);
    else if (scope.startsWith("invoke:")) invoke.add(ns);
    else if (scope.startsWith("deploy:")) {
      deploy.add(ns);
      read.add(ns);
      invoke.add(ns);
    }
  }
  return { name, tokenId, admin: scopes.includes("admin"), readAll: scopes.includes("read"), read, deploy, invoke };
}

/** The operator's HEARTH_TOKEN: admin, always valid (the bootstrap that creates every other token). */
export const BOOTSTRAP_PRINCIPAL: Principal = principalOf("bootstrap", null, ["admin"]);

/** Whether `principal` holds `right` in namespace `ns`. */
export function allows(principal: Principal, right: Right, ns: string): boolean {
  if (principal.admin) return true;
  switch (right) {
    case "read":
      return principal.readAll || principal.read.has(ns);
    case "deploy":
      return principal.deploy.has(ns);
    case "invoke":
      return principal.invoke.has(ns);
    case "status":
      return principal.readAll || principal.read.has(ns) || principal.invoke.has(ns);
  }
}

/** The scope a missing right asks for, as the 403 names it. */
function scopeFor(right: Right, ns: string): string {
  if (right === "status") return `read:${ns} or invoke:${ns}`;
  return `${right}:${ns}`;
}

/** Throws ERR_FORBIDDEN naming the scope needed unless `principal` holds `right` in `ns`. */
export function requireRight(principal: Principal, right: Right, ns: string, what: string): void {
  if (allows(principal, right, ns)) return;
  throw new HearthError(
    "ERR_FORBIDDEN",
    `Token ${JSON.stringify(principal.name)} may not ${what}: that needs the scope ${scopeFor(right, ns)} (or admin)`,
  );
}

/** Throws ERR_FORBIDDEN unless `principal` is admin. */
export function requireAdmin(principal: Principal, what: string): void {
  if (principal.admin) return;
  throw new HearthError(
    "ERR_FORBIDDEN",
    `Token ${JSON.stringify(principal.name)} may not ${what}: that needs the scope admin`,
  );
}

/** Throws ERR_FORBIDDEN unless `principal` may read every namespace (`read` or admin). */
export function requireReadAll(principal: Principal, what: string): void {
  if (principal.admin || principal.readAll) return;
  throw new HearthError(
    "ERR_FORBIDDEN",
    `Token ${JSON.stringify(principal.name)} may not ${what}: that needs the scope read (or admin)`,
  );
}

/** Where a new function goes when the deploy names no namespace: a token deploying to one namespace deploys there. */
export function defaultDeployNamespace(principal: Principal): string {
  if (principal.admin || principal.deploy.size !== 1) return DEFAULT_NAMESPACE;
  return principal.deploy.values().next().value as string;
}
