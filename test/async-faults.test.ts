import { nuid } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  AsyncStore,
  CONSUMERS,
  type InvocationStatus,
  STREAMS,
} from "../protocol/index.ts";
import type { Worker } from "../runtime/index.ts";
import { type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";
import {
  concurrentRuns,
  deadLettersOf,
  isAlive,
  percentile,
  QUICK_QUEUES,
  type Sink,
  startSink,
  until,
} from "./support/sink.ts";

/**
 * Async invocations under faults, on a real nats-server, scheduler, worker and executor processes:
 * an executor killed (kill -9) in the middle of a batch, a message that takes its executor down every
 * time, and a poison message retried next to another function's traffic. Functions report each run
 * to a local HTTP sink, so what ran (and how often) is counted from outside the killed processes.
 * Windows are short (ack wait 1.5 s, retries within 50–200 ms) so the file runs in well under a minute.
 */
let cluster: InProcessCluster;
let store: AsyncStore;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
  cluster = await startInProcessCluster({
    worker: QUICK_QUEUES,
  });
  store = await AsyncStore.open(cluster.nc);
});

afterAll(async () => {
  await cluster?.close();
  await sink?.close();
});

/** Stores an invocation whose path and body are both `key`. */
function submit(fn: string, key: string): Promise<string> {
  const id = nuid.next();
  const requestJson = JSON.stringify({
    method: "POST",
    url: `http://test/${encodeURIComponent(key)}`,
    headers: [["content-type", "text/plain"]],
  });
  return store
    .submit({ id, fn, requestJson, body: new TextEncoder().encode(key), acceptedAt: Date.now() })
    .then(() => id);
}

/**
 * The functions below read their key from the URL and report before their first await: a fetch made
 * after an await, while other invocations share the isolate, is charged to all of them (see
 * test/trigger-faults.test.ts, "each get their own 50 fetches"), which is not what these tests measure.
 */
const KEY = "const key = decodeURIComponent(new URL(req.url).pathname.slice(1));";

const finished = (s: InvocationStatus | null) => s?.state === "succeeded" || s?.state === "failed";

/** The statuses once all are finished, or as they are after `timeoutMs` (the assertions then say which are not). */
async function statusesWithin(ids: readonly string[], timeoutMs: number): Promise<(InvocationStatus | null)[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const statuses = await Promise.all(ids.map((id) => store.status(id)));
    if (statuses.every(finished) || performance.now() > deadline) return statuses;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function consumerOf(fn: string): Promise<{ pending: number; ackPending: number }> {
  const info = await store.jsm.consumers.info(STREAMS.async, CONSUMERS.async(fn));
  return { pending: info.num_pending, ackPending: info.num_ack_pending };
}

function countBy(values: readonly unknown[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[String(v)] = (counts[String(v)] ?? 0) + 1;
  return counts;
}

/**
 * Reports `begin`, works 300 ms, reports `end`, tagging both with its isolate (a random id per module
 * instance): a kill lands between the two for the runs in flight.
 */
const slowReporter = (sinkUrl: string) => `const ISOLATE = crypto.randomUUID().slice(0, 8);
export default { async fetch(req) {
  ${KEY}
  await fetch(${JSON.stringify(`${sinkUrl}/begin?`)} + ISOLATE, { method: "POST", body: key });
  await new Promise((r) => setTimeout(r, 300));
  await fetch(${JSON.stringify(`${sinkUrl}/end?`)} + ISOLATE, { method: "POST", body: key });
  return new Response("done " + key);
} };`;

describe("async invocations under faults", () => {
  it("kill -9 of the executor mid-batch: every invocation succeeds, duplicates only among those in flight", async () => {
    const worker = cluster.worker as Worker;
    await cluster.hearth.deploy("af-batch", { code: slowReporter(sink.url), concurrency: 4, timeoutMs: 5_000 });
    const keys = Array.from({ length: 40 }, (_, i) => `af-batch-${i}`);
    const ids = await Promise.all(keys.map((key) => submit("af-batch", key)));
    // Mid-batch: the first runs finished, the next ones 100 ms into their 300 ms.
    await until("a second wave of runs", () => (sink.keys("begin").size >= 20 ? true : undefined), 15_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [victim] = worker.executorPids;
    if (victim === undefined) throw new Error("the worker has no executor");
    // Freeze the executor to read what is in flight (nothing it holds can finish now), then kill it.
    process.kill(victim, "SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const atKill = await consumerOf("af-batch");
    const begunBeforeKill = sink.keys("begin");
    const endedBeforeKill = sink.keys("end");
    const succeededBeforeKill = new Set(
      (await Promise.all(ids.map((id) => store.status(id))))
        .map((status, i) => (status?.state === "succeeded" ? keys[i] : undefined))
        .filter((key) => key !== undefined),
    );
    process.kill(victim, "SIGKILL");
    const statuses = await statusesWithin(ids, 30_000);

    const runs = sink.counts("begin");
    const duplicated = [...runs].filter(([, n]) => n > 1).map(([key]) => key);
    const duplicates = sink.duplicates("begin");
    console.log(
      `[executor kill, async] ${keys.length} invocations; in flight at the kill: ${atKill.ackPending} ` +
        `(begun ${begunBeforeKill.size}, ended ${endedBeforeKill.size}); duplicate runs: ${duplicates}; ` +
        `attempts: ${JSON.stringify(countBy(statuses.map((s) => s?.attempts)))}`,
    );
    expect(statuses.map((s) => s?.state)).toEqual(Array(keys.length).fill("succeeded"));
    expect(sink.keys("end")).toEqual(new Set(keys));
    expect(atKill.ackPending).toBeGreaterThan(0);
    expect(duplicates).toBeLessThanOrEqual(atKill.ackPending);
    // Only runs that had begun, and were not recorded as finished, when the executor died ran again...
    for (const key of duplicated) {
      expect(begunBeforeKill.has(key)).toBe(true);
      expect(succeededBeforeKill.has(key)).toBe(false);
    }
    // ...and never twice in one executor's lifetime (an isolate dies with its executor).
    expect(concurrentRuns(sink, "begin")).toEqual([]);
    expect(isAlive(victim)).toBe(false);
    expect(worker.executorPids).not.toContain(victim);
    expect(await consumerOf("af-batch")).toEqual({ pending: 0, ackPending: 0 });
  });

  it("a message that drives its isolate to a catastrophic out-of-memory every time is dead-lettered with ERR_FUNCTION_MEMORY after its retries; the rest flow", async () => {
    const worker = cluster.worker as Worker;
    const pidsBefore = new Set(worker.executorPids);
    const pidsSeen = new Set<number>();
    const watchPids = setInterval(() => {
      for (const pid of worker.executorPids) pidsSeen.add(pid);
    }, 10);
    // A million keys in a 16 MB isolate: V8 cannot recover (a catastrophic error, as in
    // test/containment.test.ts). A run alone in its isolate fails with ERR_FUNCTION_MEMORY at once; one
    // beside others fails them all with ERR_EXECUTOR_LOST (not counted). The executor retires either way.
    await cluster.hearth.deploy("af-killer", {
      code: `const ISOLATE = crypto.randomUUID().slice(0, 8);
      export default { async fetch(req) {
        ${KEY}
        if (key === "poison") {
          await fetch(${JSON.stringify(`${sink.url}/killer-attempt?`)} + ISOLATE, { method: "POST", body: key });
          const o = {}; for (let i = 0; i < 1e6; i++) o["k" + i] = i;
          return new Response("survived");
        }
        await fetch(${JSON.stringify(`${sink.url}/killer-ran?`)} + ISOLATE, { method: "POST", body: key });
        return new Response("ok " + key);
      } };`,
      memoryMb: 16,
      cpuMs: 10_000,
      timeoutMs: 5_000,
      async: { retries: 2 },
    });
    const started = performance.now();
    const poisonId = await submit("af-killer", "poison");
    // Other messages of the same function arrive while the poison is being retried.
    const goodKeys = Array.from({ length: 20 }, (_, i) => `good-${i}`);
    const goodIds: string[] = [];
    for (const key of goodKeys) {
      goodIds.push(await submit("af-killer", key));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const [poison] = await statusesWithin([poisonId], 30_000);
    const poisonMs = performance.now() - started;
    const good = await statusesWithin(goodIds, 15_000);
    const letters = await deadLettersOf(store.jsm, "af-killer");
    clearInterval(watchPids);
    // Executors that ended (each retired after its isolate's catastrophic error, and replaced).
    const died = [...new Set([...pidsBefore, ...pidsSeen])].filter((pid) => !isAlive(pid)).length;
    const goodOutcomes = good.map((s, i) => `${goodKeys[i]} ${s?.state}${s?.error ? ` ${s.error.code}` : ""}`);
    console.log(
      `[executor-killing message] poison ${poison?.state} ${poison?.error?.code} after ${poison?.attempts} attempts ` +
        `(${sink.counts("killer-attempt").get("poison") ?? 0} runs began) in ${Math.round(poisonMs)} ms; ` +
        `${died} executors ended; other messages: ${JSON.stringify(countBy(good.map((s) => s?.state)))}, ` +
        `attempts ${JSON.stringify(countBy(good.map((s) => s?.attempts)))}; dead letters: ${letters.length}; ` +
        `concurrent duplicate runs: ${JSON.stringify(concurrentRuns(sink, "killer-ran"))}; ` +
        `not succeeded: ${JSON.stringify(goodOutcomes.filter((o) => !o.endsWith("succeeded")))}`,
    );
    expect(poison).toMatchObject({
      state: "failed",
      attempts: 3,
      deadLettered: true,
      error: { code: "ERR_FUNCTION_MEMORY" },
    });
    // Three counted attempts, plus at most one first run lost with others in the isolate: that loss is
    // charged to nobody (ERR_EXECUTOR_LOST: any of them may have caused it), and suspects then run alone.
    const runsBegun = sink.counts("killer-attempt").get("poison") ?? 0;
    expect(runsBegun).toBeGreaterThanOrEqual(3);
    expect(runsBegun).toBeLessThanOrEqual(4);
    const poisonLetters = letters.filter((letter) => letter.data === "poison");
    expect(poisonLetters).toHaveLength(1);
    expect(poisonLetters[0]?.headers).toMatchObject({
      [ASYNC_HEADERS.id]: poisonId,
      [ASYNC_HEADERS.errorCode]: "ERR_FUNCTION_MEMORY",
      [ASYNC_HEADERS.attempts]: "3",
      [ASYNC_HEADERS.origin]: ASYNC_SUBJECTS.invoke("af-killer"),
    });
    // The rest flow: each other message runs to success, none is dead-lettered for dying beside the poison.
    expect(goodOutcomes).toEqual(goodKeys.map((key) => `${key} succeeded`));
    expect(letters.map((letter) => letter.data)).toEqual(["poison"]);
    expect(sink.keys("killer-ran")).toEqual(new Set(goodKeys));
    // Rerun only after their executor died: never twice in one isolate (two deliveries at once).
    expect(concurrentRuns(sink, "killer-ran")).toEqual([]);
    expect(await consumerOf("af-killer")).toEqual({ pending: 0, ackPending: 0 });
  }, 60_000);

  it("a poison message is dead-lettered after its retries without delaying another function's invocations", async () => {
    const retries = 3;
    await cluster.hearth.deploy("af-thrower", {
      code: `export default { async fetch(req) {
        ${KEY}
        await fetch(${JSON.stringify(`${sink.url}/thrower-attempt`)}, { method: "POST", body: key });
        await new Promise((r) => setTimeout(r, 200));
        throw new Error("poison " + key);
      } };`,
      async: { retries },
    });
    await cluster.hearth.deploy("af-neighbour", {
      code: `export default { async fetch(req) {
        ${KEY}
        await fetch(${JSON.stringify(`${sink.url}/neighbour-ran`)}, { method: "POST", body: key });
        return new Response("ok " + key);
      } };`,
    });
    /** Submits `count` neighbour invocations 20 ms apart; latency = submit to first run (the sink's clock). */
    const neighbourRound = async (label: string, count: number) => {
      const submittedAt = new Map<string, number>();
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const key = `${label}-${i}`;
        submittedAt.set(key, performance.now());
        ids.push(await submit("af-neighbour", key));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const statuses = await statusesWithin(ids, 15_000);
      const ranAt = new Map<string, number>();
      for (const r of sink.reports) if (r.phase === "neighbour-ran" && !ranAt.has(r.key)) ranAt.set(r.key, r.atMs);
      const latencies = [...submittedAt].map(([key, at]) => (ranAt.get(key) ?? Number.POSITIVE_INFINITY) - at);
      return { statuses, latencies, from: Math.min(...submittedAt.values()), to: Math.max(...ranAt.values()) };
    };
    // Warm both functions (a cold start is not what is measured here).
    await statusesWithin([await submit("af-neighbour", "warm"), await submit("af-thrower", "warm")], 15_000);
    const baseline = await neighbourRound("baseline", 40);

    const poisonKeys = Array.from({ length: 20 }, (_, i) => `poison-${i}`);
    const poisonIds = await Promise.all(poisonKeys.map((key) => submit("af-thrower", key)));
    await until("the poison to be running", () => (sink.keys("thrower-attempt").size > 5 ? true : undefined), 10_000);
    const during = await neighbourRound("during", 40);
    const poisonAttemptsDuring = sink.reports.filter(
      (r) =>
        r.phase === "thrower-attempt" && r.key.startsWith("poison") && r.atMs >= during.from && r.atMs <= during.to,
    ).length;
    const poison = await statusesWithin(poisonIds, 20_000);
    const letters = (await deadLettersOf(store.jsm, "af-thrower")).filter((l) => l.data.startsWith("poison"));

    const summary = (latencies: number[]) =>
      `p50 ${percentile(latencies, 50).toFixed(1)} ms, p90 ${percentile(latencies, 90).toFixed(1)} ms, ` +
      `max ${Math.max(...latencies).toFixed(1)} ms`;
    console.log(
      `[poison next door] neighbour latency (submit → run), baseline: ${summary(baseline.latencies)}; ` +
        `while ${poisonKeys.length} poison messages were retried (${poisonAttemptsDuring} poison attempts in the window): ` +
        `${summary(during.latencies)}; poison: ${JSON.stringify(countBy(poison.map((s) => `${s?.state} ${s?.attempts}`)))}, ` +
        `${letters.length} dead letters`,
    );
    expect(baseline.statuses.map((s) => s?.state)).toEqual(Array(40).fill("succeeded"));
    expect(during.statuses.map((s) => s?.state)).toEqual(Array(40).fill("succeeded"));
    expect(during.statuses.map((s) => s?.attempts)).toEqual(Array(40).fill(1));
    // The poison really was being retried while the neighbour was measured.
    expect(poisonAttemptsDuring).toBeGreaterThan(0);
    expect(percentile(during.latencies, 50)).toBeLessThan(200);
    expect(percentile(during.latencies, 90)).toBeLessThan(Math.max(500, 3 * percentile(baseline.latencies, 90)));
    // Every poison message: all its attempts, then the dead letters with the function's error.
    for (const status of poison)
      expect(status).toMatchObject({
        state: "failed",
        attempts: retries + 1,
        deadLettered: true,
        error: { code: "ERR_FUNCTION_THREW" },
      });
    expect(new Set(letters.map((l) => l.data))).toEqual(new Set(poisonKeys));
    for (const letter of letters)
      expect(letter.headers).toMatchObject({
        [ASYNC_HEADERS.errorCode]: "ERR_FUNCTION_THREW",
        [ASYNC_HEADERS.attempts]: String(retries + 1),
      });
    for (const key of poisonKeys) expect(sink.counts("thrower-attempt").get(key)).toBe(retries + 1);
  });
});
