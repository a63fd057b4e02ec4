import { type JetStreamManager, jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTrigger } from "../control/index.ts";
import { CONSUMERS, FunctionStore, STREAMS, TriggerStore } from "../protocol/index.ts";
import type { Worker } from "../runtime/index.ts";
import { type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";
import {
  concurrentRuns,
  deadLettersOf,
  isAlive,
  QUICK_QUEUES,
  type Sink,
  startSink,
  TEST_ACK_WAIT_MS,
  until,
} from "./support/sink.ts";

/**
 * A jetstream:// trigger whose executor is killed (kill -9) in the middle of its batches, on a real
 * nats-server, scheduler, worker and executor processes. `queue()` reports each message it starts and
 * finishes to a local HTTP sink, so what ran, and how often, is counted outside the killed process.
 */
const ACK_WAIT_MS = TEST_ACK_WAIT_MS;
let cluster: InProcessCluster;
let jsm: JetStreamManager;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
  cluster = await startInProcessCluster({
    worker: QUICK_QUEUES,
  });
  jsm = await jetstreamManager(cluster.nc);
});

afterAll(async () => {
  await cluster?.close();
  await sink?.close();
});

/**
 * `queue()` reports its batch's messages begun, works 300 ms, then reports them ended: two requests
 * per batch (each message's own request would meet the fetch accounting of the last test below).
 */
const batchReporter = (sinkUrl: string) => `const ISOLATE = crypto.randomUUID().slice(0, 8);
const report = (phase, batch) =>
  fetch(${JSON.stringify(sinkUrl)} + "/" + phase + "?" + ISOLATE, { method: "POST", body: batch.messages.map((m) => String(m.body)).join("\\n") });
export default { async queue(batch) {
  await report("begin", batch);
  await new Promise((r) => setTimeout(r, 300));
  await report("end", batch);
} };`;

interface KillOutcome {
  readonly inFlightAtKill: number;
  readonly duplicates: number;
}

/**
 * Publishes `keys` (through `publish`), kills the worker's executor 100 ms into a second wave of
 * batches, and checks that every key was processed, duplicates only among what was in flight.
 * `consumer` reads the trigger's consumer (where its unacked messages are counted).
 */
async function killMidBatch(
  fn: string,
  label: string,
  keys: readonly string[],
  publish: (key: string) => Promise<unknown>,
  consumer: () => Promise<{ pending: number; ackPending: number }>,
): Promise<KillOutcome> {
  const worker = cluster.worker as Worker;
  const before = sink.reports.length;
  const mine = (phase: string) => sink.reports.slice(before).filter((r) => r.phase === phase && keys.includes(r.key));
  const keysOf = (phase: string) => new Set(mine(phase).map((r) => r.key));
  for (const key of keys) await publish(key);
  await until("a second wave of batches", () => (keysOf("begin").size >= 25 ? true : undefined), 15_000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const [victim] = worker.executorPids;
  if (victim === undefined) throw new Error("the worker has no executor");
  // Freeze the executor to read what is in flight (nothing it holds can finish now), then kill it.
  process.kill(victim, "SIGSTOP");
  await new Promise((resolve) => setTimeout(resolve, 300));
  const atKill = await consumer();
  const begunBeforeKill = keysOf("begin");
  const endedBeforeKill = keysOf("end");
  process.kill(victim, "SIGKILL");
  const killedAt = performance.now();
  await until(
    "every message to be processed",
    () => (keysOf("end").size === keys.length ? true : undefined),
    20_000,
  ).catch(async (err) => {
    console.log("MISSING", JSON.stringify(keys.filter((k) => !keysOf("end").has(k))), JSON.stringify(await consumer()));
    console.log(
      "DLQ",
      JSON.stringify(
        (await deadLettersOf(jsm, fn)).map((l) => [
          l.data,
          l.headers["hearth-error"],
          l.headers["hearth-error-message"],
          l.headers["hearth-attempts"],
        ]),
      ),
    );
    console.log("RUNS", JSON.stringify(mine("begin").map((r) => `${r.key}:${r.tag}@${Math.round(r.atMs - killedAt)}`)));
    throw err;
  });
  const doneMs = performance.now() - killedAt;
  // Whatever was still to be redelivered would show up within an ack window.
  await new Promise((resolve) => setTimeout(resolve, ACK_WAIT_MS));

  const runs = new Map<string, number>();
  for (const r of mine("begin")) runs.set(r.key, (runs.get(r.key) ?? 0) + 1);
  const duplicated = [...runs].filter(([, n]) => n > 1).map(([key]) => key);
  const duplicates = [...runs.values()].reduce((sum, n) => sum + n - 1, 0);
  console.log(
    `[executor kill, ${label}] ${keys.length} messages; in flight at the kill: ${atKill.ackPending} ` +
      `(begun ${begunBeforeKill.size}, ended ${endedBeforeKill.size}); duplicate runs: ${duplicates}; ` +
      `all processed ${Math.round(doneMs)} ms after the kill`,
  );
  if (duplicates > atKill.ackPending)
    console.log(
      "DETAIL",
      JSON.stringify(
        duplicated.map((key) => [
          key,
          begunBeforeKill.has(key),
          endedBeforeKill.has(key),
          mine("begin")
            .filter((r) => r.key === key)
            .map((r) => `${r.tag}@${Math.round(r.atMs - killedAt)}`),
        ]),
      ),
    );
  expect(keysOf("end")).toEqual(new Set(keys));
  expect(atKill.ackPending).toBeGreaterThan(0);
  expect(duplicates).toBeLessThanOrEqual(atKill.ackPending);
  for (const key of duplicated) expect(begunBeforeKill.has(key)).toBe(true);
  expect(concurrentRuns(sink, "begin").filter((run) => keys.some((key) => run.startsWith(`${key} `)))).toEqual([]);
  expect(isAlive(victim)).toBe(false);
  expect(await consumer()).toEqual({ pending: 0, ackPending: 0 });
  return { inFlightAtKill: atKill.ackPending, duplicates };
}

describe("event triggers under faults", () => {
  it("jetstream://: kill -9 of the executor mid-batch loses no message; duplicates only among those in flight", {
    timeout: 50_000,
  }, async () => {
    await cluster.hearth.deploy("tf-orders", { code: batchReporter(sink.url), timeoutMs: 5_000 });
    await jsm.streams.add({
      name: "TF_ORDERS",
      subjects: ["tf-orders.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
    });
    const trigger = await createTrigger(
      { function: "tf-orders", source: "jetstream://TF_ORDERS/tf-orders.new", batchSize: 5, maxConcurrency: 4 },
      { functions: await FunctionStore.open(cluster.nc), triggers: await TriggerStore.open(cluster.nc), jsm },
    );
    const js = jetstream(cluster.nc);
    await killMidBatch(
      "tf-orders",
      "jetstream:// trigger",
      Array.from({ length: 60 }, (_, i) => `order-${i}`),
      (key) => js.publish("tf-orders.new", key),
      async () => {
        const info = await jsm.consumers.info("TF_ORDERS", CONSUMERS.trigger(trigger.id));
        return { pending: info.num_pending, ackPending: info.num_ack_pending };
      },
    );
  });

  it("nats://: kill -9 of the executor mid-batch loses no stored message; duplicates only among those in flight", {
    timeout: 50_000,
  }, async () => {
    await cluster.hearth.deploy("tf-events", { code: batchReporter(sink.url), timeoutMs: 5_000 });
    const trigger = await createTrigger(
      { function: "tf-events", source: "nats://tf.events", batchSize: 5, maxConcurrency: 4 },
      { functions: await FunctionStore.open(cluster.nc), triggers: await TriggerStore.open(cluster.nc), jsm },
    );
    // Core NATS is at most once until stored: publish only once the worker's ingester listens.
    // (a request nobody listens to fails with "no responders"; the ingester listens without answering).
    await until(
      "the worker to subscribe to the source",
      () =>
        cluster.nc.request("tf.events", "probe", { timeout: 200 }).then(
          () => true,
          (err: unknown) => (/no responders|503/i.test(String(err)) ? undefined : true),
        ),
      10_000,
    );
    await killMidBatch(
      "tf-events",
      "nats:// trigger",
      Array.from({ length: 60 }, (_, i) => `event-${i}`),
      async (key) => {
        cluster.nc.publish("tf.events", key);
      },
      async () => {
        const info = await jsm.consumers.info(STREAMS.triggers, CONSUMERS.trigger(trigger.id));
        return { pending: info.num_pending, ackPending: info.num_ack_pending };
      },
    );
  });

  it("batches running side by side in one isolate each get their own 50 fetches", async () => {
    // One isolate (maxInstances 1) running up to 10 batches at once, each message one fetch after an await:
    // 3 fetches per batch (each after a 20 ms wait), far under the 50 one invocation may make.
    await cluster.hearth.deploy("tf-fetcher", {
      code: `export default { async queue(batch) {
        for (const m of batch.messages) {
          await new Promise((r) => setTimeout(r, 20));
          await fetch(${JSON.stringify(`${sink.url}/fetched`)}, { method: "POST", body: String(m.body) });
        }
      } };`,
      concurrency: 10,
      maxInstances: 1,
    });
    await jsm.streams.add({
      name: "TF_FETCH",
      subjects: ["tf-fetch.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
    });
    await createTrigger(
      { function: "tf-fetcher", source: "jetstream://TF_FETCH/tf-fetch.new", batchSize: 3, maxConcurrency: 10 },
      { functions: await FunctionStore.open(cluster.nc), triggers: await TriggerStore.open(cluster.nc), jsm },
    );
    const keys = Array.from({ length: 240 }, (_, i) => `fetch-${i}`);
    const js = jetstream(cluster.nc);
    await Promise.all(keys.map((key) => js.publish("tf-fetch.new", key)));
    const letters = async () =>
      (await deadLettersOf(jsm, "tf-fetcher")).map((l) => `${l.data} ${l.headers["hearth-error-message"]}`);
    await until(
      "every message to be fetched or dead-lettered",
      async () => (sink.keys("fetched").size + (await letters()).length >= keys.length ? true : undefined),
      20_000,
    );
    const dead = await letters();
    console.log(
      `[fetch accounting] ${keys.length} messages in batches of 3, 10 at once in one isolate: ` +
        `${sink.keys("fetched").size} fetched, ${sink.duplicates("fetched")} fetched again after a failed batch, ` +
        `${dead.length} dead-lettered${dead[0] ? ` (${dead[0]})` : ""}`,
    );
    expect(dead).toEqual([]);
    expect(sink.keys("fetched")).toEqual(new Set(keys));
    expect(sink.duplicates("fetched")).toBe(0);
  });
});
