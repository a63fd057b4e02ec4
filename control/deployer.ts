import {
  type CanaryVersion,
  type FunctionRecord,
  type FunctionSettings,
  FunctionStore,
  HearthError,
  KEPT_VERSIONS,
  type Logger,
  type Runnable,
  silentLogger,
  type VersionRecord,
  type VersionStore,
} from "../protocol/index.ts";
import { type DeployRequest, LIMIT_BOUNDS, type RunLimits } from "./deploy-request.ts";

export interface DeployerDeps {
  readonly store: FunctionStore;
  readonly versions: VersionStore;
  /** Called after every write of a function's record, so the hosting gateway's route cache is current at once. */
  readonly onChange: (name: string, record: FunctionRecord | null, revision: number) => void;
  /** After a function is removed: what else it owned goes (its secrets). */
  readonly onRemoved?: (name: string) => Promise<void>;
  readonly now?: () => Date;
  readonly log?: Logger;
  /** Versions kept per function (KEPT_VERSIONS); tests keep fewer. */
  readonly keepVersions?: number;
}

/** One thing a deploy changed, for the CLI to print: `memoryMb 128 → 256`, `env.API_URL added`. */
export interface Change {
  readonly field: string;
  readonly from?: unknown;
  readonly to?: unknown;
}

export interface DeployOutcome {
  readonly record: FunctionRecord;
  /** The function did not exist before. */
  readonly created: boolean;
  /** The version this deploy made; null when code, variables and limits were all unchanged. */
  readonly version: VersionRecord | null;
  readonly changes: readonly Change[];
}

/** One version of a deployment and the share of requests it serves. */
export interface Split {
  readonly id: number;
  readonly percent: number;
}

export interface RollbackOutcome {
  readonly record: FunctionRecord;
  /** What served before: one version at 100 %, or two. */
  readonly from: readonly Split[];
  readonly to: number;
  /** Secrets whose value is not the one the target version was made with: they keep today's value. */
  readonly secretsChanged: readonly string[];
}

const SETTING_FIELDS = [
  "minInstances",
  "maxInstances",
  "async",
  "namespace",
  "access",
  "rateLimit",
] as const satisfies readonly (keyof FunctionSettings)[];
const LIMIT_FIELDS = Object.keys(LIMIT_BOUNDS) as (keyof RunLimits)[];

/**
 * Every change to what a function serves goes through here: a deploy makes an immutable version and
 * serves it; a rollout splits requests between two versions; a rollback returns to an earlier one; a
 * secret change makes a new version of what is served. Each writes the function's record with a
 * compare-and-set, so two changes racing on one function cannot lose each other (the loser gets
 * ERR_CONFLICT and changes nothing).
 */
export class Deployer {
  readonly #store: FunctionStore;
  readonly #versions: VersionStore;
  readonly #onChange: DeployerDeps["onChange"];
  readonly #onRemoved: (name: string) => Promise<void>;
  readonly #now: () => Date;
  readonly #log: Logger;
  readonly #keep: number;

  constructor(deps: DeployerDeps) {
    this.#store = deps.store;
    this.#versions = deps.versions;
    this.#onChange = deps.onChange;
    this.#onRemoved = deps.onRemoved ?? (async () => {});
    this.#now = deps.now ?? (() => new Date());
    this.#log = deps.log ?? silentLogger();
    this.#keep = deps.keepVersions ?? KEPT_VERSIONS;
  }

  /**
   * Deploys `bundle` (the prepared script of `request.code`) with its `sourceMap`, if any. What the
   * request leaves out keeps the function's current value. Unchanged code, map, variables and limits
   * make no new version; a request that changes nothing at all writes nothing.
   */
  async deploy(
    name: string,
    request: DeployRequest,
    bundle: Uint8Array,
    sourceMap?: Uint8Array,
  ): Promise<DeployOutcome> {
    const entry = await this.#store.getEntry(name);
    const previous = entry?.record ?? null;
    const digest = FunctionStore.digestOf(bundle);
    const sourceMapDigest = sourceMap ? FunctionStore.digestOf(sourceMap) : undefined;
    const runnable = withVersion({
      digest,
      bundleBytes: bundle.byteLength,
      ...(sourceMapDigest ? { sourceMapDigest } : {}),
      env: request.env ?? previous?.env ?? {},
      ...limitsOf(request.limits, previous),
      // Secrets are set through their own API; a deploy keeps the revisions the function has.
      ...(previous?.secrets ? { secrets: previous.secrets } : {}),
    });
    const settings: FunctionSettings = { ...settingsOf(previous), ...request.settings };
    // The function would get one of two values without saying which.
    const shadowing = Object.keys(request.env ?? {}).filter((key) => previous?.secrets?.[key] !== undefined);
    if (shadowing.length > 0) {
      throw new HearthError(
        "ERR_BAD_REQUEST",
        `env ${shadowing.join(", ")} would shadow ${name}'s secret of the same name: rename the variable, or remove the secret first (hearth secrets rm ${name} ${shadowing[0]})`,
      );
    }
    const percent = request.percent ?? 100;
    const changes = previous ? diff(previous, runnable, settings) : [];
    if (previous && changes.length === 0 && percent === 100) {
      return { record: previous, created: false, version: null, changes };
    }
    if (!previous && percent < 100) {
      throw new HearthError("ERR_BAD_REQUEST", `${name} is new: its first version serves every request (percent 100)`);
    }
    // Settings alone changed: the deployment (a canary included) stays as it is.
    const makesVersion = !previous || previous.version !== runnable.version || percent < 100;
    let version: VersionRecord | null = null;
    if (makesVersion) {
      await this.#store.putBundle(digest, bundle);
      // Beside the bundle, in the same object store under its own digest (and collected with it).
      if (sourceMap && sourceMapDigest) await this.#store.putBundle(sourceMapDigest, sourceMap);
      version = await this.#versions.create(name, runnable, request.message, this.#now());
    }
    const now = this.#now().toISOString();
    const serving = servingAfterDeploy(previous, runnable, version, percent);
    const record: FunctionRecord = {
      name,
      ...settings,
      ...serving,
      ...previousOf(previous, serving),
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
    };
    await this.#write(record, entry?.revision ?? 0);
    return { record, created: previous === null, version, changes };
  }

  /** Serves one version (100 %) or two (percentages that add up to 100) of an existing function. */
  async setDeployment(name: string, splits: readonly Split[]): Promise<FunctionRecord> {
    const entry = await this.#existing(name);
    const [primary, canary] = checkSplits(splits);
    const [main, side] = await Promise.all([this.#version(name, primary.id), canary && this.#version(name, canary.id)]);
    const serving = {
      ...runnableOf(main),
      versionId: main.id,
      ...(side && canary ? { canary: { ...runnableOf(side), id: side.id, percent: canary.percent } } : {}),
    };
    const record: FunctionRecord = {
      ...settingsOf(entry.record),
      name,
      ...serving,
      ...previousOf(entry.record, serving),
      createdAt: entry.record.createdAt,
      updatedAt: this.#now().toISOString(),
    };
    await this.#write(record, entry.revision);
    return record;
  }

  /** Returns to `to`, or to the last version that served every request before this deployment. */
  async rollback(name: string, to?: number): Promise<RollbackOutcome> {
    const current = (await this.#existing(name)).record;
    const target = to ?? current.previousVersionId;
    if (target === undefined) {
      throw new HearthError(
        "ERR_BAD_REQUEST",
        `${name} has served no other version on its own before this one; name the version to return to`,
      );
    }
    const version = await this.#version(name, target);
    const record = await this.setDeployment(name, [{ id: target, percent: 100 }]);
    return { record, from: splitsOf(current), to: target, secretsChanged: secretsDiffering(version, current) };
  }

  /**
   * The function's secrets changed (their KV revisions are `revisions`): what it serves is made again
   * as new versions with them, so every worker reloads with the new values.
   */
  async applySecrets(
    name: string,
    revisions: Readonly<Record<string, number>>,
    message: string,
  ): Promise<FunctionRecord> {
    const entry = await this.#existing(name);
    const previous = entry.record;
    const now = this.#now();
    const remake = async (runnable: Runnable) =>
      this.#versions.create(
        name,
        withVersion({ ...withoutSecrets(runnable), ...secretsField(revisions) }),
        message,
        now,
      );
    const main = await remake(previous);
    const side = previous.canary ? await remake(previous.canary) : null;
    const serving = {
      ...runnableOf(main),
      versionId: main.id,
      ...(side && previous.canary
        ? { canary: { ...runnableOf(side), id: side.id, percent: previous.canary.percent } }
        : {}),
    };
    const record: FunctionRecord = {
      ...settingsOf(previous),
      name,
      ...serving,
      ...previousOf(previous, serving),
      createdAt: previous.createdAt,
      updatedAt: now.toISOString(),
    };
    await this.#write(record, entry.revision);
    return record;
  }

  /** Removes the function and its versions; returns the removal's KV revision, or null if there was none. */
  async remove(name: string): Promise<number | null> {
    const revision = await this.#store.delete(name);
    if (revision === null) return null;
    this.#onChange(name, null, revision);
    await this.#onRemoved(name);
    await this.#collect(await this.#versions.removeAll(name));
    return revision;
  }

  async #write(record: FunctionRecord, expectedRevision: number): Promise<void> {
    const revision = await this.#store.putIf(record, expectedRevision);
    if (revision === null) {
      throw new HearthError(
        "ERR_CONFLICT",
        `Another change to ${record.name} landed meanwhile; nothing was changed, retry`,
      );
    }
    this.#onChange(record.name, record, revision);
    const serving = record.canary ? [record.versionId, record.canary.id] : [record.versionId];
    await this.#collect(await this.#versions.prune(record.name, serving, this.#keep));
  }

  /**
   * Deletes the bundles of pruned versions that no kept version and no function still uses. Reads
   * every kept version once (a prune happens at most once per deploy past the 100th version).
   */
  async #collect(digests: readonly string[]): Promise<void> {
    if (digests.length === 0) return;
    try {
      const used = await this.#versions.bundlesInUse();
      for (const record of await this.#store.list()) {
        for (const runnable of record.canary ? [record, record.canary] : [record]) {
          used.add(runnable.digest);
          if (runnable.sourceMapDigest) used.add(runnable.sourceMapDigest);
        }
      }
      for (const digest of new Set(digests)) if (!used.has(digest)) await this.#store.deleteBundle(digest);
    } catch (err) {
      // A bundle left behind costs space, not correctness: the next collection tries again.
      this.#log.warn({ err, digests }, "bundle collection failed");
    }
  }

  async #existing(name: string): Promise<{ record: FunctionRecord; revision: number }> {
    const entry = await this.#store.getEntry(name);
    if (!entry) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${name} is not deployed`);
    return entry;
  }

  async #version(name: string, id: number): Promise<VersionRecord> {
    const version = await this.#versions.get(name, id);
    if (!version)
      throw new HearthError("ERR_VERSION_NOT_FOUND", `${name} has no version ${id} (hearth versions ls ${name})`);
    return version;
  }
}

/** What a deploy serves: the new version alone, the new one as a canary beside the current, or as before. */
function servingAfterDeploy(
  previous: FunctionRecord | null,
  runnable: Runnable,
  version: VersionRecord | null,
  percent: number,
): Runnable & Pick<FunctionRecord, "versionId" | "canary"> {
  if (version && (percent === 100 || !previous)) return { ...runnable, versionId: version.id };
  const current = previous as FunctionRecord;
  const canary = version ? { ...runnable, id: version.id, percent } : current.canary;
  return { ...runnableOf(current), versionId: current.versionId, ...(canary ? { canary } : {}) };
}

/** The versions a record serves, with their shares: the function's own first. */
export function splitsOf(record: FunctionRecord): Split[] {
  const { canary } = record;
  if (!canary) return [{ id: record.versionId, percent: 100 }];
  return [
    { id: record.versionId, percent: 100 - canary.percent },
    { id: canary.id, percent: canary.percent },
  ];
}

/** One or two splits adding up to 100, the larger first (it is the function's own version). */
function checkSplits(splits: readonly Split[]): [Split, Split | undefined] {
  const bad = (message: string) => new HearthError("ERR_BAD_REQUEST", message);
  if (!Array.isArray(splits) || splits.length < 1 || splits.length > 2) {
    throw bad("A deployment serves one version, or two with percentages: versions: [{ id, percent }, ...]");
  }
  for (const split of splits) {
    if (typeof split !== "object" || split === null || !Number.isInteger(split.id) || split.id < 1) {
      throw bad(`Each version needs an integer id of at least 1, got ${JSON.stringify(split)}`);
    }
    if (!Number.isInteger(split.percent) || split.percent < 1 || split.percent > 100) {
      throw bad(`percent must be an integer from 1 to 100, got ${JSON.stringify(split.percent)}`);
    }
  }
  const [a, b] = splits as [Split, Split | undefined];
  if (b && a.id === b.id) throw bad(`Version ${a.id} is named twice`);
  if (a.percent + (b?.percent ?? 0) !== 100) throw bad("The percentages must add up to 100");
  return b && b.percent > a.percent ? [b, a] : [a, b];
}

/** The version before `previous`'s deployment that served every request, carried or newly set. */
function previousOf(
  previous: FunctionRecord | null,
  next: { readonly versionId: number; readonly canary?: CanaryVersion },
): { previousVersionId?: number } {
  if (!previous) return {};
  const servedAlone = !previous.canary;
  const moved = previous.versionId !== next.versionId || next.canary !== undefined;
  const id = servedAlone && moved ? previous.versionId : previous.previousVersionId;
  // During a canary the version that served alone may be the main one still: rollback ends the canary.
  const pointless = id === next.versionId && next.canary === undefined;
  return id !== undefined && !pointless ? { previousVersionId: id } : {};
}

function withVersion(runnable: Omit<Runnable, "version">): Runnable {
  return { ...runnable, version: FunctionStore.versionOf(runnable) };
}

/** Exactly the Runnable fields of a record or version (none of its id, settings or canary). */
function runnableOf(source: Runnable): Runnable {
  const { digest, bundleBytes, sourceMapDigest, version, env, memoryMb, timeoutMs, cpuMs, concurrency, maxBodyBytes } =
    source;
  return {
    digest,
    bundleBytes,
    ...(sourceMapDigest ? { sourceMapDigest } : {}),
    version,
    env,
    memoryMb,
    timeoutMs,
    cpuMs,
    concurrency,
    maxBodyBytes,
    ...secretsField(source.secrets ?? {}),
  };
}

function withoutSecrets(runnable: Runnable): Omit<Runnable, "version" | "secrets"> {
  const { version: _version, secrets: _secrets, ...rest } = runnableOf(runnable);
  return rest;
}

function secretsField(revisions: Readonly<Record<string, number>>): { secrets?: Readonly<Record<string, number>> } {
  return Object.keys(revisions).length > 0 ? { secrets: revisions } : {};
}

function settingsOf(record: FunctionRecord | null): FunctionSettings {
  const settings: Record<string, unknown> = {};
  for (const field of SETTING_FIELDS) if (record?.[field] !== undefined) settings[field] = record[field];
  return settings as FunctionSettings;
}

function limitsOf(requested: Partial<RunLimits>, previous: FunctionRecord | null): RunLimits {
  const limits = {} as { -readonly [K in keyof RunLimits]: number };
  for (const field of LIMIT_FIELDS) limits[field] = requested[field] ?? previous?.[field] ?? LIMIT_BOUNDS[field][2];
  return limits;
}

/** What differs between the function as it is and as the deploy would make it. */
function diff(previous: FunctionRecord, next: Runnable, settings: FunctionSettings): Change[] {
  const changes: Change[] = [];
  if (previous.digest !== next.digest)
    changes.push({ field: "code", from: previous.digest.slice(0, 12), to: next.digest.slice(0, 12) });
  if (previous.sourceMapDigest !== next.sourceMapDigest) {
    changes.push({
      field: "sourceMap",
      ...(previous.sourceMapDigest ? { from: previous.sourceMapDigest.slice(0, 12) } : {}),
      ...(next.sourceMapDigest ? { to: next.sourceMapDigest.slice(0, 12) } : {}),
    });
  }
  for (const key of new Set([...Object.keys(previous.env), ...Object.keys(next.env)])) {
    const [from, to] = [previous.env[key], next.env[key]];
    if (from !== to)
      changes.push({
        field: `env.${key}`,
        ...(from !== undefined ? { from } : {}),
        ...(to !== undefined ? { to } : {}),
      });
  }
  for (const field of LIMIT_FIELDS) {
    if (previous[field] !== next[field]) changes.push({ field, from: previous[field], to: next[field] });
  }
  for (const field of SETTING_FIELDS) {
    const [from, to] = [previous[field], settings[field]];
    if (JSON.stringify(from) !== JSON.stringify(to)) changes.push({ field, from, to });
  }
  return changes;
}

/** Secret names whose revision differs between a version and what the function has now. */
function secretsDiffering(version: Runnable, current: Runnable): string[] {
  const [then, now] = [version.secrets ?? {}, current.secrets ?? {}];
  return [...new Set([...Object.keys(then), ...Object.keys(now)])].filter((name) => then[name] !== now[name]).sort();
}
