/**
 * Async latency with the function warm and the queue empty: one invocation at a time over one
 * keep-alive connection. Each is timed from just before its POST to
 * - its 202 (stored),
 * - "running" visible in the status bucket (the worker took it),
 * - the function's start: the function answers `Date.now()`, read back from its stored response,
 * - "succeeded" visible in the status bucket: what `GET /v1/invocations/<id>` reads.
 * Statuses are followed with a KV watch on the invocations bucket (pushed as they are stored, no
 * polling interval in the figure). Start times are whole milliseconds on both sides (Date.now), so
 * accept → start carries ±1 ms of rounding.
 */
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { Pool } from "undici";
import { ASYNC_BUCKETS, type InvocationStatus } from "../protocol/index.ts";
import type { AsyncCluster } from "./async-cluster.ts";

/** A function that answers the time it started, for accept → start. */
export const START_TIME_FN = "export default { fetch() { return new Response(String(Date.now())); } };";

/** Per invocation, ms from just before its POST to each step; one entry per sample. */
export interface LatencySample {
  readonly acceptedMs: number[];
  readonly runningMs: number[];
  readonly startMs: number[];
  readonly succeededMs: number[];
  /** The last invocation as `GET /v1/invocations/<id>` shows it (checks the API reads what the watch saw). */
  readonly apiState: string;
}

interface Seen {
  runningAt?: number;
  succeededAt?: number;
  status?: InvocationStatus;
  done?: () => void;
}

/** `samples` invocations of `fn` one at a time (after `warmup` unrecorded ones); see the file comment. */
export async function measureAsyncLatency(
  cluster: AsyncCluster,
  fn: string,
  samples: number,
  warmup: number,
): Promise<LatencySample> {
  const kv = await new Kvm(cluster.nc).open(ASYNC_BUCKETS.invocations);
  const watch = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
  const seen = new Map<string, Seen>();
  const entry = (id: string) => seen.get(id) ?? (seen.set(id, {}).get(id) as Seen);
  void (async () => {
    for await (const e of watch) {
      if (e.operation !== "PUT") continue;
      const now = performance.now();
      const status = e.json<InvocationStatus>();
      const s = entry(e.key);
      if (status.state === "running") s.runningAt ??= now;
      if (status.state === "succeeded" || status.state === "failed") {
        s.succeededAt = now;
        s.status = status;
        s.done?.();
      }
    }
  })();
  const pool = new Pool(cluster.url, { connections: 1 });
  const out: LatencySample = { acceptedMs: [], runningMs: [], startMs: [], succeededMs: [], apiState: "" };
  let lastId = "";
  try {
    for (let i = 0; i < warmup + samples; i++) {
      const sentEpoch = Date.now();
      const sent = performance.now();
      const res = await pool.request({
        method: "POST",
        path: `/fn/${fn}`,
        headers: { prefer: "respond-async", "content-type": "application/json" },
        body: "{}",
      });
      const accepted = performance.now();
      const { id } = (await res.body.json()) as { id: string };
      if (res.statusCode !== 202) throw new Error(`async submit answered ${res.statusCode}`);
      const s = entry(id);
      if (s.succeededAt === undefined) {
        const done = Promise.withResolvers<void>();
        s.done = done.resolve;
        const timer = setTimeout(() => done.reject(new Error(`invocation ${id} not finished in 10 s`)), 10_000);
        await done.promise.finally(() => clearTimeout(timer));
      }
      seen.delete(id);
      lastId = id;
      if (s.status?.state !== "succeeded")
        throw new Error(`invocation ${id} ${s.status?.state}: ${s.status?.error?.message}`);
      if (i < warmup) continue;
      const body = Buffer.from(s.status.response?.body ?? "", "base64").toString();
      out.acceptedMs.push(accepted - sent);
      out.runningMs.push((s.runningAt ?? Number.NaN) - sent);
      out.startMs.push(Number(body) - sentEpoch);
      out.succeededMs.push((s.succeededAt as number) - sent);
    }
    const api = await cluster.hearth.invocation(lastId);
    return { ...out, apiState: api.state };
  } finally {
    watch.stop();
    await pool.close();
  }
}
