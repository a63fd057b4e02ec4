import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Runnable, VersionRecord } from "./function-record.ts";
import { BUCKETS } from "./subjects.ts";

/** Versions kept per function; older ones are pruned at the next deploy (their bundles too, once unused). */
export const KEPT_VERSIONS = 100;
/** Two deploys racing for the same id: the loser takes the next one, this many times at most. */
const CREATE_ATTEMPTS = 5;

const keyOf = (fn: string, id: number) => `${fn}.${id}`;
/** The objects a version uses in the bundles store: its bundle, and its source map if it has one. */
const objectsOf = (v: VersionRecord): string[] => (v.sourceMapDigest ? [v.digest, v.sourceMapDigest] : [v.digest]);

/**
 * Every version of every function, immutable, in a KV bucket under `<fn>.<id>` (ids 1, 2, 3, ...
 * per function). A version is made by a deploy or a secret change and never edited; a deployment
 * (the function's record) names which versions serve.
 *
 * @example
 * const versions = await VersionStore.open(nc);
 * const v = await versions.create("hello", runnable, "fix the greeting");
 */
export class VersionStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  static async open(nc: NatsConnection): Promise<VersionStore> {
    return new VersionStore(await new Kvm(nc).create(BUCKETS.versions, { history: 1 }));
  }

  /** Stores `runnable` as the function's next version. Ids only grow (a pruned id is not reused). */
  async create(fn: string, runnable: Runnable, message: string | undefined, now: Date): Promise<VersionRecord> {
    let id = (await this.#maxId(fn)) + 1;
    for (let attempt = 1; ; attempt++) {
      const version: VersionRecord = {
        fn,
        id,
        ...runnable,
        createdAt: now.toISOString(),
        ...(message ? { message } : {}),
      };
      try {
        await this.#kv.create(keyOf(fn, id), JSON.stringify(version));
        return version;
      } catch (err) {
        // Another deploy took this id a moment ago: take the next one.
        if (attempt >= CREATE_ATTEMPTS) throw err;
        id = (await this.#maxId(fn)) + 1;
      }
    }
  }

  async get(fn: string, id: number): Promise<VersionRecord | null> {
    const entry = await this.#kv.get(keyOf(fn, id));
    return entry && entry.operation === "PUT" ? entry.json<VersionRecord>() : null;
  }

  /** The function's kept versions, newest first. */
  async list(fn: string): Promise<VersionRecord[]> {
    const ids = await this.#ids(fn);
    const versions = await Promise.all(ids.map((id) => this.get(fn, id)));
    return versions.filter((v): v is VersionRecord => v !== null).sort((a, b) => b.id - a.id);
  }

  /** The kept version of `fn` whose runtime hash is `version` (the newest if several), or null. */
  async findByHash(fn: string, version: string): Promise<VersionRecord | null> {
    return (await this.list(fn)).find((v) => v.version === version) ?? null;
  }

  /**
   * Deletes the oldest versions past `keep`, never one of `serving`. Returns the digests of the
   * bundles (and source maps) the deleted versions used (the caller collects those no kept version still uses).
   */
  async prune(fn: string, serving: readonly number[], keep = KEPT_VERSIONS): Promise<string[]> {
    const versions = await this.list(fn);
    const old = versions.slice(keep).filter((v) => !serving.includes(v.id));
    await Promise.all(old.map((v) => this.#kv.purge(keyOf(fn, v.id))));
    return old.flatMap(objectsOf);
  }

  /** Deletes every version of a removed function; returns the digests they used. */
  async removeAll(fn: string): Promise<string[]> {
    return this.prune(fn, [], 0);
  }

  /** The bundles kept versions use, over every function: one pass over the bucket. */
  async bundlesInUse(): Promise<Set<string>> {
    const digests = new Set<string>();
    for await (const key of await this.#kv.keys()) {
      const entry = await this.#kv.get(key);
      if (entry?.operation === "PUT") for (const digest of objectsOf(entry.json<VersionRecord>())) digests.add(digest);
    }
    return digests;
  }

  async #ids(fn: string): Promise<number[]> {
    const ids: number[] = [];
    for await (const key of await this.#kv.keys(`${fn}.*`)) ids.push(Number(key.slice(fn.length + 1)));
    return ids.filter((id) => Number.isInteger(id) && id > 0);
  }

  async #maxId(fn: string): Promise<number> {
    return Math.max(0, ...(await this.#ids(fn)));
  }
}
