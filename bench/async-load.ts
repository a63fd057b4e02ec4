/**
 * Closed-loop clients that submit async invocations (`Prefer: respond-async`) over keep-alive
 * connections (undici, one connection per client), counting 202s per second. bench/load.ts does the
 * same for sync GETs; this one POSTs, and a 202, not a 200, is success: the invocation is stored.
 */
import { Pool } from "undici";

/** One run of the submitters. */
export interface AcceptRun {
  readonly durationMs: number;
  /** 202s in all. */
  readonly accepted: number;
  /** 202s in each whole second of the run. */
  readonly acceptedPerSecond: number[];
  /** Answers other than 202 (or transport errors), by status or error code. */
  readonly failures: Record<string, number>;
  /** Every 202's latency, ms. */
  readonly latencyMs: number[];
}

/** Where to submit, how many clients, how long. */
export interface AcceptLoadOptions {
  /** Origin and path, e.g. `http://127.0.0.1:8080/fn/noop`. */
  readonly url: string;
  readonly clients: number;
  readonly durationMs: number;
  readonly body?: string;
  /** Counted as each 202 arrives (to follow the backlog while the run goes on). */
  readonly onAccepted?: () => void;
}

/** Runs `clients` closed-loop submitters for `durationMs`; resolves once every last answer is in. */
export async function runAcceptLoad(options: AcceptLoadOptions): Promise<AcceptRun> {
  const url = new URL(options.url);
  const path = `${url.pathname}${url.search}`;
  const pool = new Pool(url.origin, { connections: options.clients, pipelining: 1 });
  const body = options.body ?? '{"hello":"async"}';
  const headers = { prefer: "respond-async", "content-type": "application/json" };
  const perSecond: number[] = [];
  const latencyMs: number[] = [];
  const failures: Record<string, number> = {};
  const startedAt = performance.now();
  const deadline = startedAt + options.durationMs;
  const client = async () => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      let outcome: string;
      try {
        const res = await pool.request({ method: "POST", path, headers, body });
        await res.body.dump();
        outcome = String(res.statusCode);
      } catch (err) {
        outcome = (err as { code?: string }).code ?? "transport error";
      }
      const now = performance.now();
      if (outcome === "202") {
        latencyMs.push(now - sent);
        const second = Math.floor((now - startedAt) / 1000);
        perSecond[second] = (perSecond[second] ?? 0) + 1;
        options.onAccepted?.();
      } else {
        failures[outcome] = (failures[outcome] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: options.clients }, client));
  const durationMs = performance.now() - startedAt;
  await pool.close();
  const whole = Math.floor(options.durationMs / 1000);
  return {
    durationMs,
    accepted: latencyMs.length,
    acceptedPerSecond: Array.from({ length: whole }, (_, i) => perSecond[i] ?? 0),
    failures,
    latencyMs,
  };
}
