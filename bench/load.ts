/**
 * A closed-loop HTTP load generator on undici, for benchmarks that need every request's send time
 * and outcome (wrk only gives totals): `clients` loops, each sending its next request as soon as the
 * previous answer is read. One keep-alive connection per client.
 */
import { Pool } from "undici";
import { percentile } from "./stats.ts";

/** Every request of one run, by index: when it was sent (ms after start), how long it took, status. */
export interface LoadRecords {
  readonly sentMs: number[];
  readonly latencyMs: number[];
  /** HTTP status, or 0 for a transport error. */
  readonly status: number[];
  /** Hearth error code (or transport error) per failed request, by code. */
  readonly failures: Map<string, number>;
}

export interface LoadResult extends LoadRecords {
  readonly durationMs: number;
  readonly requests: number;
  readonly ok: number;
  readonly failed: number;
  readonly requestsPerSecond: number;
}

export interface ClosedLoopOptions {
  /** Origin and path, e.g. `http://127.0.0.1:8080/fn/hello`. */
  readonly url: string;
  readonly clients: number;
  /** Stops sending after this long (requests in flight are still awaited). */
  readonly durationMs: number;
  /** A request unanswered for this long counts as failed (bounds a run). Default 35 s. */
  readonly requestTimeoutMs?: number;
}

export interface ClosedLoop {
  /** performance.now() when the clients started: the step. */
  readonly startedAt: number;
  readonly records: LoadRecords;
  /** Stops early; resolves with the result once every client has its last answer. */
  stop(): Promise<LoadResult>;
  /** Resolves when the run ends (duration elapsed or stop()). */
  readonly done: Promise<LoadResult>;
}

/** Starts `clients` closed-loop clients against `url` now. */
export function startClosedLoop(options: ClosedLoopOptions): ClosedLoop {
  const url = new URL(options.url);
  const path = `${url.pathname}${url.search}`;
  const timeoutMs = options.requestTimeoutMs ?? 35_000;
  const pool = new Pool(url.origin, {
    connections: options.clients,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const records: LoadRecords = { sentMs: [], latencyMs: [], status: [], failures: new Map() };
  const startedAt = performance.now();
  const deadline = startedAt + options.durationMs;
  let stopped = false;
  const fail = (code: string) => records.failures.set(code, (records.failures.get(code) ?? 0) + 1);

  const client = async () => {
    while (!stopped && performance.now() < deadline) {
      const sent = performance.now();
      let status = 0;
      try {
        const res = await pool.request({ method: "GET", path });
        status = res.statusCode;
        if (status === 200) await res.body.dump();
        else fail(errorCode(status, await res.body.text()));
      } catch (err) {
        fail((err as { code?: string }).code ?? "transport error");
      }
      records.sentMs.push(sent - startedAt);
      records.latencyMs.push(performance.now() - sent);
      records.status.push(status);
    }
  };
  const done = (async (): Promise<LoadResult> => {
    await Promise.all(Array.from({ length: options.clients }, client));
    const durationMs = performance.now() - startedAt;
    await pool.close();
    const ok = records.status.filter((s) => s === 200).length;
    const requests = records.status.length;
    return {
      ...records,
      durationMs,
      requests,
      ok,
      failed: requests - ok,
      requestsPerSecond: (requests / durationMs) * 1000,
    };
  })();
  return {
    startedAt,
    records,
    done,
    stop() {
      stopped = true;
      return done;
    },
  };
}

function errorCode(status: number, body: string): string {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? `HTTP ${status}`;
  } catch {
    return `HTTP ${status}`;
  }
}

/** p-th percentile latency of the requests sent in [fromMs, toMs) after the start. */
export function latencyIn(records: LoadRecords, fromMs: number, toMs: number, p: number): number {
  const picked: number[] = [];
  for (let i = 0; i < records.sentMs.length; i++) {
    const sent = records.sentMs[i] as number;
    if (sent >= fromMs && sent < toMs) picked.push(records.latencyMs[i] as number);
  }
  return percentile(picked, p);
}

/** Runs `task` over `items` with at most `concurrency` at once; results in item order. */
export async function runBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await task(items[i] as T, i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}
