/**
 * `node bench/ingest-latency.ts`: what the broker ingest hop costs. Publishes N messages to RabbitMQ
 * and to MQTT (127.0.0.1, the machine's brokers), each moved into the trigger stream by the
 * ingester, and times source publish → arrival at a JetStream pull consumer of that stream; the
 * baseline publishes straight to the stream. Two ways: sequential (next message once the previous
 * arrived: the latency of one message) and pipelined (up to WINDOW in flight: throughput). Everything, brokers
 * aside, runs in this one Node process, as an ingester shares its worker.
 *
 * Env: BENCH_INGEST_N (2000), BENCH_ROUNDS (3).
 */
import { randomUUID } from "node:crypto";
import {
  AckPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { connect as connectNats } from "@nats-io/transport-node";
import { connect as connectAmqp } from "amqplib";
import { connectAsync as connectMqtt } from "mqtt";
import { ASYNC_SUBJECTS, STREAMS } from "../protocol/async.ts";
import { ensureAsyncStreams } from "../protocol/async-streams.ts";
import { AmqpIngester, type Ingester, MqttIngester } from "../runtime/ingest/index.ts";
import { startNatsServer } from "../sdk/dev/nats-server.ts";
import { percentile, spread, table } from "./stats.ts";

const N = Number(process.env.BENCH_INGEST_N ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = 200;
/**
 * Pipelined runs keep at most this many messages sent but not yet arrived. Mosquitto queues at most
 * `max_queued_messages` (1,000 by default) per subscriber beyond its 20 in flight and drops the rest
 * ("Outgoing messages are being dropped" in its log): an unbounded burst of 2,000 lost messages there.
 */
const WINDOW = 500;
/** A run whose messages stop arriving fails after this long instead of hanging. */
const ARRIVAL_TIMEOUT_MS = 30_000;
const AMQP_URL = "amqp://guest:guest@127.0.0.1:5672";
const MQTT_URL = "mqtt://127.0.0.1:1883";

type Path = "direct" | "amqp" | "mqtt";
type Mode = "sequential" | "pipelined";

interface Run {
  readonly latenciesMs: number[];
  readonly msgsPerS: number;
}

/** A source to publish into and, for broker paths, the ingester that moves it into `triggerId`'s subject. */
interface Source {
  readonly triggerId: string;
  /** Sends one message carrying its send time; resolves once handed to the client library. */
  send(body: Uint8Array): Promise<void> | void;
  close(): Promise<void>;
}

async function openSource(path: Path, js: JetStreamClient): Promise<Source> {
  const triggerId = `bench-${path}-${randomUUID().slice(0, 8)}`;
  if (path === "direct") {
    const subject = ASYNC_SUBJECTS.trigger(triggerId);
    const pending = new Set<Promise<unknown>>();
    return {
      triggerId,
      send: (body) => {
        const p = js.publish(subject, body);
        pending.add(p);
        p.finally(() => pending.delete(p)).catch(() => {});
      },
      close: async () => {
        await Promise.allSettled(pending);
      },
    };
  }
  if (path === "amqp") {
    const model = await connectAmqp(AMQP_URL);
    const channel = await model.createChannel();
    const queue = `hearth-bench-${triggerId}`;
    await channel.assertQueue(queue, { durable: false });
    const ingester: Ingester = new AmqpIngester({ triggerId, js, url: AMQP_URL, queue });
    await ingester.start();
    return {
      triggerId,
      send: (body) => {
        if (!channel.sendToQueue(queue, Buffer.from(body))) return new Promise((r) => channel.once("drain", r));
      },
      close: async () => {
        await ingester.stop();
        await channel.deleteQueue(queue);
        await model.close();
      },
    };
  }
  const topic = `hearth-bench/${triggerId}`;
  const publisher = await connectMqtt(MQTT_URL, { protocolVersion: 5 });
  const ingester: Ingester = new MqttIngester({ triggerId, js, url: MQTT_URL, topic });
  await ingester.start();
  return {
    triggerId,
    send: (body) => {
      publisher.publish(topic, Buffer.from(body), { qos: 1 });
    },
    close: async () => {
      await ingester.stop();
      await publisher.endAsync();
      // Drop the persistent session, so Mosquitto does not keep it.
      const forget = await connectMqtt(MQTT_URL, { clientId: `hearth-${triggerId}`, clean: true, protocolVersion: 5 });
      await forget.endAsync();
    },
  };
}

/** Arrivals at a pull consumer of one trigger's subject: each message's send→arrival time. */
async function watchArrivals(jsm: JetStreamManager, js: JetStreamClient, triggerId: string) {
  const name = `bench_${triggerId.replace(/-/g, "_")}`;
  await jsm.consumers.add(STREAMS.triggers, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    filter_subject: ASYNC_SUBJECTS.trigger(triggerId),
  });
  const consumer = await js.consumers.get(STREAMS.triggers, name);
  const messages = await consumer.consume({ max_messages: 1000 });
  const latenciesMs: number[] = [];
  let lastArrival = 0;
  const wait: { until?: { count: number; resolve: () => void } } = {};
  void (async () => {
    for await (const m of messages) {
      const now = performance.now();
      const sentAt = new DataView(m.data.buffer, m.data.byteOffset, 8).getFloat64(0);
      latenciesMs.push(now - sentAt);
      lastArrival = now;
      m.ack();
      if (wait.until && latenciesMs.length >= wait.until.count) wait.until.resolve();
    }
  })();
  return {
    latenciesMs,
    lastArrival: () => lastArrival,
    /** Resolves once `count` messages have arrived in all; rejects if they stop coming. */
    arrived: (count: number) =>
      latenciesMs.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`${latenciesMs.length} of ${count} messages arrived in ${ARRIVAL_TIMEOUT_MS} ms`)),
              ARRIVAL_TIMEOUT_MS,
            );
            wait.until = {
              count,
              resolve: () => {
                clearTimeout(timer);
                resolve();
              },
            };
          }),
    close: async () => {
      await messages.close();
      await jsm.consumers.delete(STREAMS.triggers, name);
    },
  };
}

function stamped(): Uint8Array {
  const body = new Uint8Array(64); // a small event
  new DataView(body.buffer).setFloat64(0, performance.now());
  return body;
}

async function measure(path: Path, mode: Mode, js: JetStreamClient, jsm: JetStreamManager): Promise<Run> {
  const source = await openSource(path, js);
  const arrivals = await watchArrivals(jsm, js, source.triggerId);
  try {
    for (let i = 0; i < WARMUP; i++) {
      await source.send(stamped());
      await arrivals.arrived(i + 1);
    }
    arrivals.latenciesMs.length = 0;
    const start = performance.now();
    for (let i = 0; i < N; i++) {
      await source.send(stamped());
      if (mode === "sequential") await arrivals.arrived(i + 1);
      else if (i + 1 >= WINDOW) await arrivals.arrived(i + 1 - WINDOW);
    }
    await arrivals.arrived(N);
    const elapsedS = (arrivals.lastArrival() - start) / 1000;
    return { latenciesMs: [...arrivals.latenciesMs], msgsPerS: N / elapsedS };
  } finally {
    await arrivals.close();
    await source.close();
  }
}

async function main(): Promise<void> {
  await using nats = await startNatsServer({});
  const nc = await connectNats({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await ensureAsyncStreams(jsm);
  const js = jetstream(nc);

  const paths: Path[] = ["direct", "amqp", "mqtt"];
  const modes: Mode[] = ["sequential", "pipelined"];
  const results = new Map<string, { p50: number[]; p99: number[]; rate: number[] }>();
  for (let round = 1; round <= ROUNDS; round++) {
    // Interleaved, so a slow moment of the machine hits every path alike.
    for (const mode of modes) {
      for (const path of paths) {
        const run = await measure(path, mode, js, jsm);
        const key = `${path}/${mode}`;
        const r = results.get(key) ?? { p50: [], p99: [], rate: [] };
        r.p50.push(percentile(run.latenciesMs, 50));
        r.p99.push(percentile(run.latenciesMs, 99));
        r.rate.push(run.msgsPerS);
        results.set(key, r);
        process.stderr.write(
          `round ${round} ${key}: p50 ${r.p50.at(-1)?.toFixed(3)} ms, p99 ${r.p99.at(-1)?.toFixed(3)} ms, ${Math.round(run.msgsPerS)} msgs/s\n`,
        );
      }
    }
  }

  const rows = [];
  for (const mode of modes) {
    const base = results.get(`direct/${mode}`);
    for (const path of paths) {
      const r = results.get(`${path}/${mode}`);
      if (!r || !base) continue;
      const added = (xs: number[], bs: number[]) => xs.map((x, i) => x - (bs[i] ?? Number.NaN));
      rows.push({
        path,
        mode,
        "p50 ms": spread(r.p50, 3),
        "p99 ms": spread(r.p99, 3),
        "added p50 ms": path === "direct" ? "—" : spread(added(r.p50, base.p50), 3),
        "added p99 ms": path === "direct" ? "—" : spread(added(r.p99, base.p99), 3),
        "msgs/s": spread(r.rate, 0),
      });
    }
  }
  console.log(
    `\n${N} messages of 64 B per run (pipelined: ${WINDOW} in flight), ${ROUNDS} rounds, median (min–max) of rounds:\n`,
  );
  console.log(table(rows));
  await nc.close();
}

await main();
