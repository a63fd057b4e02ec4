import { readdirSync, readFileSync } from "node:fs";

/** How often the list of threads is read again (isolated-vm starts threads when its pool is busy). */
const LIST_EVERY_MS = 500;

/** CPU time used so far by each isolated-vm pool thread, by thread id, in nanoseconds. */
export type ThreadCpuSample = ReadonlyMap<number, bigint>;

/**
 * Reads the CPU time of the threads isolated-vm runs isolates on, from the kernel's per-thread
 * scheduler statistics (Linux: /proc/self/task/<tid>/schedstat, nanoseconds on the CPU).
 *
 * Why: isolated-vm's `isolate.cpuTime` reads as wall time while an isolate is on a thread (its
 * in-progress reading uses steady_clock, src/isolate/executor.cc), and measured on this machine it
 * also did for finished calls: four isolates each doing 1.06 s of work on 2 cores reported 2.3–2.5 s.
 * A function next to busy neighbours was charged for the time it waited for a core. The threads'
 * own CPU clocks say how much of that time was spent computing.
 *
 * isolated-vm's pool threads inherit the main thread's name ("MainThread") and are the only other
 * threads that do; libuv's and V8's own workers are named otherwise. Elsewhere than Linux this
 * returns null and callers fall back to isolated-vm's reading.
 */
export class PoolThreadCpu {
  readonly #pid = process.pid;
  /** tid → is it an isolated-vm pool thread; names never change, so each is read once. */
  readonly #isPoolThread = new Map<number, boolean>();
  #available = process.platform === "linux";
  #listedAt = Number.NEGATIVE_INFINITY;

  sample(): ThreadCpuSample | null {
    if (!this.#available) return null;
    try {
      // Listing the threads costs more than reading them all (~150 µs against ~10 µs a thread):
      // list at most every LIST_EVERY_MS; a thread started since is read from the next listing on.
      if (performance.now() - this.#listedAt >= LIST_EVERY_MS) this.#list();
      const sample = new Map<number, bigint>();
      for (const [tid, pool] of this.#isPoolThread) {
        if (!pool) continue;
        const stat = readTaskFile(tid, "schedstat");
        if (stat) sample.set(tid, BigInt(stat.slice(0, stat.indexOf(" "))));
      }
      return sample;
    } catch {
      this.#available = false; // no procfs here: never try again
      return null;
    }
  }

  #list(): void {
    this.#listedAt = performance.now();
    const live = new Set<number>();
    for (const entry of readdirSync("/proc/self/task")) {
      const tid = Number(entry);
      if (tid === this.#pid) continue;
      live.add(tid);
      if (!this.#isPoolThread.has(tid)) this.#isPoolThread.set(tid, readTaskFile(tid, "comm")?.trim() === "MainThread");
    }
    for (const tid of this.#isPoolThread.keys()) if (!live.has(tid)) this.#isPoolThread.delete(tid);
  }

  /** CPU the pool threads used between two samples (threads present in both). */
  static used(before: ThreadCpuSample, after: ThreadCpuSample): bigint {
    let total = 0n;
    for (const [tid, ns] of after) {
      const was = before.get(tid);
      if (was !== undefined && ns > was) total += ns - was;
    }
    return total;
  }
}

function readTaskFile(tid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/self/task/${tid}/${file}`, "latin1");
  } catch {
    return null; // the thread ended between the listing and the read
  }
}
