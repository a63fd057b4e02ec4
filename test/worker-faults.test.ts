import { nuid } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AsyncStore, CONSUMERS, type InvocationStatus, STREAMS } from "../protocol/index.ts";
import { type ComponentProcess, spawnComponent } from "./support/components.ts";
import { type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";
import { processTree } from "./support/proc.ts";
import { concurrentRuns, isAlive, type Sink, startSink, until } from "./support/sink.ts";

/**
 * kill -9 of a worker process in the middle of a batch of async invocations: a real `hearth worker`
 * process (the victim) and a second worker (the survivor, in this process) both pull from the
 * function's consumer; what the victim held is redelivered to the survivor after the ack window.
 */
const ACK_WAIT_MS = 1_500;
let cluster: InProcessCluster;
let store: AsyncStore;
let sink: Sink;
let victim: ComponentProcess | null = null;

beforeAll(async () => {
  sink = await startSink();
  cluster = await startInProcessCluster({ worker: false });
  store = await AsyncStore.open(cluster.nc);
  victim = spawnComponent("worker", {
    NATS_URL: cluster.nats.url,
    HEARTH_WORKER_ID: "victim",
    HEARTH_EXECUTORS: "1",
    HEARTH_ASYNC_ACK_WAIT_MS: String(ACK_WAIT_MS),
    HEARTH_ASYNC_RETRY_BASE_MS: "50",
    HEARTH_ASYNC_RETRY_CAP_MS: "200",
    HEARTH_EGRESS_ALLOW: "127.0.0.1",
  });
  await cluster.startWorker({
    id: "survivor",
    ackWaitMs: ACK_WAIT_MS,
    retry: { baseMs: 50, capMs: 200 },
    executorEnv: { HEARTH_EGRESS_ALLOW: "127.0.0.1" },
  });
  await until(
    "both workers to report",
    async () =>
      (await cluster.hearth.status()).nodes.filter((n) => n.state === "ready").length === 2 ? true : undefined,
    30_000,
  );
});

afterAll(async () => {
  await victim?.stop();
  await cluster?.close();
  await sink?.close();
});

function submit(fn: string, body: string): Promise<string> {
  const id = nuid.next();
  const requestJson = JSON.stringify({
    method: "POST",
    url: "http://test/",
    headers: [["content-type", "text/plain"]],
  });
  return store
    .submit({ id, fn, requestJson, body: new TextEncoder().encode(body), acceptedAt: Date.now() })
    .then(() => id);
}

describe("async invocations when a worker dies", () => {
  it("kill -9 of a worker mid-batch: its messages run on the other worker after the ack window, none lost", async () => {
    const proc = victim as ComponentProcess;
    await cluster.hearth.deploy("wf-batch", {
      // Reports `begin`, works 300 ms, reports `end`, tagged with its isolate.
      code: `const ISOLATE = crypto.randomUUID().slice(0, 8);
      export default { async fetch(req) {
        const key = await req.text();
        await fetch(${JSON.stringify(`${sink.url}/begin?`)} + ISOLATE, { method: "POST", body: key });
        await new Promise((r) => setTimeout(r, 300));
        await fetch(${JSON.stringify(`${sink.url}/end?`)} + ISOLATE, { method: "POST", body: key });
        return new Response("done " + key);
      } };`,
      concurrency: 2,
      timeoutMs: 5_000,
    });
    const keys = Array.from({ length: 80 }, (_, i) => `wf-${i}`);
    const ids = await Promise.all(keys.map((key) => submit("wf-batch", key)));
    // Both workers host the function and run its messages; then 100 ms into a wave of runs.
    await until(
      "the function to run on both workers",
      async () => {
        const fn = (await cluster.hearth.status()).functions.find((f) => f.name === "wf-batch");
        return fn?.nodes.includes("victim") && fn.nodes.includes("survivor") && sink.keys("end").size > 0
          ? true
          : undefined;
      },
      20_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Freeze the victim's whole tree to read what is in flight, then kill -9 the worker process alone.
    const tree = proc.tree();
    const executors = tree.filter((pid) => pid !== proc.pid);
    proc.signalTree("SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const info = await store.jsm.consumers.info(STREAMS.async, CONSUMERS.async("wf-batch"));
    const inFlightAtKill = info.num_ack_pending;
    const begunBeforeKill = sink.keys("begin");
    const succeededBeforeKill = new Set(
      (await Promise.all(ids.map((id) => store.status(id))))
        .map((status, i) => (status?.state === "succeeded" ? keys[i] : undefined))
        .filter((key) => key !== undefined),
    );
    process.kill(proc.pid, "SIGKILL");
    const killedAt = performance.now();
    // Its executors run on (and go once they see their worker gone).
    for (const pid of executors) process.kill(pid, "SIGCONT");

    const statuses = await until(
      "every invocation to succeed",
      async () => {
        const all = await Promise.all(ids.map((id) => store.status(id)));
        return all.every((s) => s?.state === "succeeded" || s?.state === "failed")
          ? (all as InvocationStatus[])
          : undefined;
      },
      20_000,
    );
    const doneMs = performance.now() - killedAt;
    const reruns = sink.reports.filter(
      (r) =>
        r.phase === "begin" &&
        r.atMs > killedAt &&
        begunBeforeKill.has(r.key) &&
        (sink.counts("begin").get(r.key) ?? 0) > 1,
    );
    const duplicated = [...sink.counts("begin")].filter(([, n]) => n > 1).map(([key]) => key);
    const duplicates = sink.duplicates("begin");
    const firstRerunMs = Math.min(...reruns.map((r) => r.atMs)) - killedAt;
    console.log(
      `[worker kill] ${keys.length} invocations over 2 workers; in flight at the kill (both workers): ${inFlightAtKill}; ` +
        `duplicate runs: ${duplicates}; first rerun ${Math.round(firstRerunMs)} ms after the kill ` +
        `(ack window ${ACK_WAIT_MS} ms); all finished ${Math.round(doneMs)} ms after the kill`,
    );
    expect(statuses.map((s) => s.state)).toEqual(Array(keys.length).fill("succeeded"));
    expect(sink.keys("end")).toEqual(new Set(keys));
    // The victim was mid-batch: what it held ran again elsewhere.
    expect(duplicates).toBeGreaterThan(0);
    expect(duplicates).toBeLessThanOrEqual(inFlightAtKill);
    for (const key of duplicated) {
      expect(begunBeforeKill.has(key)).toBe(true);
      expect(succeededBeforeKill.has(key)).toBe(false);
    }
    expect(concurrentRuns(sink, "begin")).toEqual([]);
    // Redelivered once its ack window ran out (no in-progress acks came from the dead worker).
    expect(firstRerunMs).toBeLessThan(ACK_WAIT_MS + 3_000);
    const consumer = await store.jsm.consumers.info(STREAMS.async, CONSUMERS.async("wf-batch"));
    expect([consumer.num_pending, consumer.num_ack_pending]).toEqual([0, 0]);
    // The dead worker's executors went by themselves: nothing of it is left running.
    await until(
      "the victim's executors to exit",
      () => (executors.every((pid) => !isAlive(pid)) ? true : undefined),
      10_000,
    );
    expect(processTree(proc.pid).filter(isAlive)).toEqual([]);
  });
});
