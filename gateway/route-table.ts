import type { FunctionRecord, FunctionStore } from "../protocol/index.ts";

/** The gateway's view of deployed functions, kept current by a watch on the functions bucket. */
export class RouteTable {
  readonly #records = new Map<string, FunctionRecord>();
  #watch: { stop(): void } | null = null;

  async follow(store: FunctionStore, onError: (err: unknown) => void): Promise<void> {
    this.#watch = await store.watch((change) => {
      if (change.kind === "put") this.set(change.record.name, change.record);
      else this.set(change.name, null);
    }, onError);
  }

  get(name: string): FunctionRecord | undefined {
    return this.#records.get(name);
  }

  /** Sets or (with null) removes a route. A watch event older than what we hold is ignored. */
  set(name: string, record: FunctionRecord | null): void {
    if (record === null) this.#records.delete(name);
    else {
      const held = this.#records.get(name);
      if (!held || held.updatedAt <= record.updatedAt) this.#records.set(name, record);
    }
  }

  stop(): void {
    this.#watch?.stop();
  }
}
