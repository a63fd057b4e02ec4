import type { FunctionObservation } from "./cluster-view.ts";
import type { Assignment } from "./placer.ts";

/** One replica the leader has asked for: `confirmedAt` is null until its node said done. */
export interface Replica {
  readonly node: string;
  readonly isolates: number;
  readonly confirmedAt: number | null;
}

/** A confirmed replica missing from its executor's reports this long was unloaded behind our back. */
const CONFIRMED_UNREPORTED_MS = 3_000;

/**
 * What the leader believes is placed: its own commands (optimistic, so the next decision does not
 * place the same pool twice) reconciled with what executors report (the truth, after a grace for
 * reports to catch up). A new leader starts from the reports alone.
 */
export class IntendedAssignment {
  readonly #replicas = new Map<string, Map<string, Replica>>();
  /** `fn executor` → when we unloaded it: reports still showing it for a while are not adopted back. */
  readonly #unloadedAt = new Map<string, number>();

  get(fn: string): ReadonlyMap<string, Replica> | undefined {
    return this.#replicas.get(fn);
  }

  set(fn: string, executor: string, replica: Replica): void {
    let replicas = this.#replicas.get(fn);
    if (!replicas) {
      replicas = new Map();
      this.#replicas.set(fn, replicas);
    }
    replicas.set(executor, replica);
  }

  delete(fn: string, executor: string): void {
    const replicas = this.#replicas.get(fn);
    replicas?.delete(executor);
    if (replicas?.size === 0) this.#replicas.delete(fn);
  }

  /** An unload sent to its node (counted as done at once; reports showing it for a while are not adopted back). */
  unloaded(fn: string, executor: string, now: number): void {
    this.delete(fn, executor);
    this.#unloadedAt.set(`${fn} ${executor}`, now);
  }

  clear(): void {
    this.#replicas.clear();
    this.#unloadedAt.clear();
  }

  forget(fn: string): void {
    this.#replicas.delete(fn);
  }

  functions(): string[] {
    return [...this.#replicas.keys()];
  }

  /** Isolates assigned to `fn` over the cluster. */
  isolatesOf(fn: string): number {
    let total = 0;
    for (const r of this.#replicas.get(fn)?.values() ?? []) total += r.isolates;
    return total;
  }

  /** As the placer reads it: fn → executor → isolates. */
  toAssignment(): Assignment {
    const assignment = new Map<string, Map<string, number>>();
    for (const [fn, replicas] of this.#replicas) {
      assignment.set(fn, new Map([...replicas].map(([executor, r]) => [executor, r.isolates])));
    }
    return assignment;
  }

  /**
   * Brings the belief in line with the reports: replicas on executors that are gone are dropped at
   * once, confirmed ones the executor stopped reporting after a grace; replicas reported but unknown
   * (a new leader, or a worker that reloaded after an executor restart) are adopted.
   * @param nodeOf the node of a live executor, undefined for one that is gone
   * @param busy (fn, executor) pairs with a command under way: left alone
   */
  reconcile(
    observed: ReadonlyMap<string, FunctionObservation>,
    nodeOf: (executor: string) => string | undefined,
    busy: (fn: string, executor: string) => boolean,
    now: number,
  ): void {
    for (const [fn, replicas] of this.#replicas) {
      const reported = observed.get(fn)?.replicas;
      for (const [executor, replica] of replicas) {
        if (busy(fn, executor)) continue;
        const gone = nodeOf(executor) === undefined;
        const vanished =
          replica.confirmedAt !== null &&
          !reported?.has(executor) &&
          now - replica.confirmedAt > CONFIRMED_UNREPORTED_MS;
        if (gone || vanished) this.delete(fn, executor);
      }
    }
    for (const [key, at] of this.#unloadedAt) if (now - at > CONFIRMED_UNREPORTED_MS) this.#unloadedAt.delete(key);
    for (const [fn, { replicas }] of observed) {
      for (const [executor, isolates] of replicas) {
        const node = nodeOf(executor);
        if (!node || busy(fn, executor) || this.#replicas.get(fn)?.has(executor)) continue;
        if (!this.#unloadedAt.has(`${fn} ${executor}`)) this.set(fn, executor, { node, isolates, confirmedAt: now });
      }
    }
  }
}
