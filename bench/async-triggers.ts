/**
 * A jetstream:// trigger on a user's stream through a trivial `queue()` function: throughput and
 * the latency of single messages. Per run: a fresh trigger (POST /v1/triggers) on its own subject,
 * whose consumer the control plane creates reading from now on; a warm-up until the function is
 * placed (the scheduler sees the consumer's depth) and a batch went through; then
 * - throughput: M messages stored in a burst (see publishBurst), timed from the first publish until
 *   the consumer has nothing pending or unacked (consumer info every 50 ms);
 * - latency: one message at a time, from just before its publish until the worker's ack of it is
 *   seen on the ack subject (`$JS.ACK.<stream>.<consumer>.…`, a core NATS publish anyone may hear).
 */
import { RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { CONSUMERS } from "../protocol/index.ts";
import { type AsyncCluster, type CpuByRole, cpuSince } from "./async-cluster.ts";
import { sleep, until } from "./stats.ts";

/** The user's stream the triggers read (Limits retention, file storage). */
export const USER_STREAM = "BENCH_EVENTS";
const USER_SUBJECTS = "bench.events.>";
/** `queue()` that acks every message by returning. */
export const QUEUE_FN = "export default { async queue(batch) {} };";

/** One trigger run: throughput of a burst, latency of single messages, CPU per message. */
export interface TriggerSample {
  readonly batchSize: number;
  readonly messagesPerS: number;
  /** How fast the burst was stored (for reference: well above what is processed). */
  readonly publishedPerS: number;
  readonly cpuPerMessage: CpuByRole;
  readonly otherCores: number;
  /** Single messages, publish → ack seen, ms. */
  readonly latencyMs: number[];
}

/** Creates USER_STREAM on `bench.events.>`; each run then uses a subject of its own. */
export async function createUserStream(cluster: AsyncCluster): Promise<void> {
  await cluster.jsm.streams.add({
    name: USER_STREAM,
    subjects: [USER_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
  });
}

async function drained(cluster: AsyncCluster, consumer: string, timeoutMs: number, everyMs: number) {
  await until(
    () => cluster.jsm.consumers.info(USER_STREAM, consumer),
    (c) => c.num_pending === 0 && c.num_ack_pending === 0,
    timeoutMs,
    everyMs,
  );
}

/**
 * Stores `count` messages as fast as nats-server takes them: core publishes (no ack each), then a
 * flush and a check that the stream holds them all. Pipelined js.publish from this process tops out
 * near 15,000/s (its client costs ~45 µs per message), which would cap the rate measured.
 */
async function publishBurst(cluster: AsyncCluster, subject: string, count: number): Promise<void> {
  const before = (await cluster.jsm.streams.info(USER_STREAM)).state.last_seq;
  const body = new Uint8Array(64);
  for (let i = 0; i < count; i++) {
    cluster.nc.publish(subject, body);
    if (i % 1_000 === 999) await cluster.nc.flush();
  }
  await cluster.nc.flush();
  await until(
    async () => (await cluster.jsm.streams.info(USER_STREAM)).state.last_seq - before,
    (stored) => stored >= count,
    10_000,
    20,
  );
}

/**
 * The stream sequence a `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…` subject acknowledges:
 * the form nats-server sends without a JetStream domain, the only one the subscription below matches.
 */
function ackedSeq(subject: string): number {
  return Number(subject.split(".")[5]);
}

/** Adds a trigger of `fn` on `bench.events.<run>` with `batchSize`, measures, and removes it. */
export async function measureTrigger(
  cluster: AsyncCluster,
  fn: string,
  run: string,
  batchSize: number,
  messages: number,
  latencySamples: number,
): Promise<TriggerSample> {
  const subject = `bench.events.${run}`;
  const trigger = await cluster.hearth.addTrigger(fn, {
    source: `jetstream://${USER_STREAM}/${subject}`,
    batchSize,
  });
  const consumer = CONSUMERS.trigger(trigger.id);
  try {
    await publishBurst(cluster, subject, batchSize * 2);
    await drained(cluster, consumer, 30_000, 50);

    const cpu = cpuSince(cluster);
    const started = performance.now();
    await publishBurst(cluster, subject, messages);
    const published = performance.now();
    await drained(cluster, consumer, 120_000, 50);
    const elapsedMs = performance.now() - started;
    const used = cpu();

    // When each message's ack was seen; the ack may come before the publish's own answer reaches us.
    const ackedAt = new Map<number, number>();
    let waiting: { seq: number; resolve: () => void } | null = null;
    const sub = cluster.nc.subscribe(`$JS.ACK.${USER_STREAM}.${consumer}.>`, {
      callback: (_err, msg) => {
        if (!(msg.string().startsWith("+ACK") || msg.data.length === 0)) return;
        const seq = ackedSeq(msg.subject);
        ackedAt.set(seq, performance.now());
        if (waiting?.seq === seq) waiting.resolve();
      },
    });
    await cluster.nc.flush();
    const latencyMs: number[] = [];
    for (let i = 0; i < latencySamples; i++) {
      const sent = performance.now();
      const { seq } = await cluster.js.publish(subject, new Uint8Array(64));
      if (!ackedAt.has(seq)) {
        const seen = Promise.withResolvers<void>();
        waiting = { seq, resolve: seen.resolve };
        const timer = setTimeout(() => seen.reject(new Error(`message ${seq} not acked in 10 s`)), 10_000);
        await seen.promise.finally(() => clearTimeout(timer));
      }
      latencyMs.push((ackedAt.get(seq) as number) - sent);
      ackedAt.delete(seq);
      await sleep(2);
    }
    sub.unsubscribe();
    return {
      batchSize,
      messagesPerS: (messages / elapsedMs) * 1000,
      publishedPerS: (messages / (published - started)) * 1000,
      cpuPerMessage: Object.fromEntries(Object.entries(used.byRole).map(([r, us]) => [r, us / messages])) as CpuByRole,
      otherCores: used.otherCores,
      latencyMs,
    };
  } finally {
    await cluster.hearth.removeTrigger(trigger.id);
  }
}
