import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AsyncStore, CONSUMERS, type InvocationStatus, STREAMS } from "../protocol/index.ts";
import { type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";
import { percentile, type Sink, startSink, until } from "./support/sink.ts";

/**
 * nats-server killed (kill -9) and restarted on its port and file-backed JetStream folder while
 * clients keep submitting async invocations over HTTP (`Prefer: respond-async`) to a real gateway:
 * what the gateway acknowledged (202) must run; what it could not store must be refused at once (503).
 */
let cluster: InProcessCluster;
let store: AsyncStore;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
  cluster = await startInProcessCluster({
    worker: {
      ackWaitMs: 1_500,
      retry: { baseMs: 50, capMs: 200 },
      executorEnv: { HEARTH_EGRESS_ALLOW: "127.0.0.1" },
    },
  });
  store = await AsyncStore.open(cluster.nc);
});

afterAll(async () => {
  await cluster?.close();
  await sink?.close();
});

interface Submit {
  readonly key: string;
  readonly sentAtMs: number;
  readonly latencyMs: number;
  /** HTTP status, or 0 when no answer came within 15 s. */
  readonly status: number;
  readonly code?: string;
  readonly id?: string;
  readonly retryAfter?: string | null;
}

async function submitOverHttp(key: string, t0: number): Promise<Submit> {
  const sentAtMs = performance.now() - t0;
  const started = performance.now();
  try {
    const res = await fetch(`${cluster.gateway.url}/fn/nr-echo/${key}`, {
      method: "POST",
      headers: { prefer: "respond-async", "content-type": "text/plain" },
      body: key,
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await res.json()) as { id?: string; error?: { code: string } };
    return {
      key,
      sentAtMs,
      latencyMs: performance.now() - started,
      status: res.status,
      id: body.id,
      code: body.error?.code,
      retryAfter: res.headers.get("retry-after"),
    };
  } catch {
    return { key, sentAtMs, latencyMs: performance.now() - started, status: 0 };
  }
}

describe("async invocations across a nats-server restart", () => {
  it("every 202 runs; submits while NATS is down get 503 at once", { timeout: 55_000 }, async () => {
    await cluster.hearth.deploy("nr-echo", {
      // The key from the path, reported before any await (so the fetch is charged to this invocation alone).
      code: `export default { async fetch(req) {
        const key = new URL(req.url).pathname.slice(1);
        await fetch(${JSON.stringify(`${sink.url}/ran`)}, { method: "POST", body: key });
        await new Promise((r) => setTimeout(r, 200));
        return new Response("ran " + key);
      } };`,
      // A run whose reply NATS lost is failed by the worker at its timeout (+2 s): keep that short.
      timeoutMs: 8_000,
    });
    const warm = await submitOverHttp("warm", performance.now());
    await until("the warm-up to run", () => (sink.keys("ran").has("warm") ? true : undefined), 15_000);
    expect(warm.status).toBe(202);

    // A submit every 10 ms for 6 s, whatever the answers (a stuck one holds nothing up); NATS dies at
    // 1.5 s and comes back at 3 s.
    const t0 = performance.now();
    const pending: Promise<Submit>[] = [];
    const clients = (async () => {
      for (let n = 0; performance.now() - t0 < 6_000; n++) {
        pending.push(submitOverHttp(`nr-${n}`, t0));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const outage = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const killedAt = performance.now() - t0;
      await cluster.nats.kill();
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const restartingAt = performance.now() - t0;
      await cluster.nats.restart();
      return { killedAt, restartingAt, upAt: performance.now() - t0 };
    })();
    await clients;
    const { killedAt, restartingAt, upAt } = await outage;
    const submits = await Promise.all(pending);

    const accepted = submits.filter((s) => s.status === 202);
    const refused = submits.filter((s) => s.status === 503);
    const other = submits.filter((s) => s.status !== 202 && s.status !== 503);
    const readAll = () =>
      Promise.all(accepted.map((s) => store.status(s.id ?? "").catch((err: unknown) => String(err))));
    const statuses = await until(
      `${accepted.length} accepted invocations to finish`,
      async () => {
        const all = await readAll();
        return all.every((s) => typeof s !== "string" && (s?.state === "succeeded" || s?.state === "failed"))
          ? (all as InvocationStatus[])
          : undefined;
      },
      // The runs NATS cut off fail at their 8 s timeout (+2 s) and are retried: all done well within 15 s.
      15_000,
    ).catch(async (err) => {
      const all = await readAll();
      const unfinished = accepted
        .map((s, i) => ({ key: s.key, sentAtMs: Math.round(s.sentAtMs), status: all[i] }))
        .filter(
          (u) => typeof u.status === "string" || (u.status?.state !== "succeeded" && u.status?.state !== "failed"),
        );
      console.log(
        `UNFINISHED ${JSON.stringify(unfinished.map((u) => [u.key, u.sentAtMs, typeof u.status === "string" ? u.status : `${u.status?.state} ${u.status?.attempts} ${u.status?.error?.code}`, sink.counts("ran").get(u.key) ?? 0]))}`,
      );
      const info = await store.jsm.consumers.info(STREAMS.async, CONSUMERS.async("nr-echo"));
      console.log(
        `CONSUMER pending ${info.num_pending} ack-pending ${info.num_ack_pending} redelivered ${info.num_redelivered}`,
      );
      throw err;
    });
    const allDoneAt = performance.now() - t0;
    const ranAt = new Map<string, number>();
    for (const r of sink.reports) if (r.phase === "ran" && !ranAt.has(r.key)) ranAt.set(r.key, r.atMs - t0);
    const waits = accepted.map((s) => (ranAt.get(s.key) ?? Number.NaN) - s.sentAtMs);
    const ranAgain = sink.duplicates("ran");
    const slow = accepted.filter((_, i) => (waits[i] ?? 0) > 2_000);
    if (slow.length > 0)
      console.log(
        `SLOW (sent at → ran at, ms): ${JSON.stringify(slow.map((s) => [Math.round(s.sentAtMs), Math.round(ranAt.get(s.key) ?? -1)]))}`,
      );
    const refusedLatencies = refused.map((s) => s.latencyMs);
    const acceptedAfterRestart = accepted.filter((s) => s.sentAtMs > upAt).length;
    console.log(
      `[nats restart] killed at ${Math.round(killedAt)} ms, restarted ${Math.round(restartingAt)}–${Math.round(upAt)} ms; ` +
        `${submits.length} submits: ${accepted.length} × 202 (${acceptedAfterRestart} after the restart), ` +
        `${refused.length} × 503 (latency p50 ${percentile(refusedLatencies, 50).toFixed(1)} ms, ` +
        `p90 ${percentile(refusedLatencies, 90).toFixed(1)} ms, max ${Math.max(0, ...refusedLatencies).toFixed(1)} ms, ` +
        `${refusedLatencies.filter((ms) => ms > 1_000).length} over 1 s), ` +
        `${other.length} other ${JSON.stringify(other.map((s) => [s.status, s.code]))}; ` +
        `accepted ones: ${statuses.filter((s) => s.state === "succeeded").length} succeeded, ${ranAgain} ran more than once; ` +
        `submit → run p50 ${percentile(waits, 50).toFixed(0)} ms, max ${Math.max(...waits).toFixed(0)} ms; all finished at ${Math.round(allDoneAt)} ms`,
    );
    expect(other).toEqual([]);
    expect(refused.length).toBeGreaterThan(0);
    expect(acceptedAfterRestart).toBeGreaterThan(0);
    for (const s of refused) {
      expect(s.code).toBe("ERR_UNAVAILABLE");
      expect(s.retryAfter).toBeTruthy();
    }
    // Refused at once while the gateway knows NATS is down; a submit caught mid-publish by the crash
    // waits for its publish to time out (JetStream's 5 s), no longer.
    expect(percentile(refusedLatencies, 90)).toBeLessThan(100);
    expect(Math.max(...refusedLatencies)).toBeLessThan(6_000);
    // Every acknowledged invocation ran and succeeded.
    expect(statuses.map((s) => s.state)).toEqual(Array(accepted.length).fill("succeeded"));
    expect([...accepted.map((s) => s.key)].filter((key) => !sink.keys("ran").has(key))).toEqual([]);
  });
});
