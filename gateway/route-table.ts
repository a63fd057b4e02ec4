import type { FunctionRecord, FunctionStore } from "../protocol/index.ts";

/**
 * The gateway's view of deployed functions, kept current by a watch on the functions bucket. Changes
 * are ordered by KV revision, not by timestamps from different gateways' clocks; a removal is kept
 * as a tombstone so a late, older put cannot bring the function back.
 */
export class RouteTable {
  readonly #records = new Map<string, { record: FunctionRecord | null; revision: number }>();
  #watch: { stop(): void } | null = null;

  async follow(store: FunctionStore, onError: (err: unknown) => void): Promise<void> {
    this.#watch = await store.watch((change) => {
      if (change.kind === "put") this.set(change.record.name, change.record, change.revision);
      else this.set(change.name, null, change.revision);
    }, onError);
  }

  get(name: string): FunctionRecord | undefined {
    return this.#records.get(name)?.record ?? undefined;
  }

  /** Sets or (with null) removes a route, unless what we hold is newer. */
  set(name: string, record: FunctionRecord | null, revision: number): void {
    const held = this.#records.get(name);
    if (!held || held.revision <= revision) this.#records.set(name, { record, revision });
  }

  stop(): void {
    this.#watch?.stop();
  }
}
