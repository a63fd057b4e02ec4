import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import amqp from "amqplib";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTrigger } from "../control/index.ts";
import {
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  FunctionStore,
  STREAMS,
  TRIGGER_DEFAULTS,
  type TriggerRecord,
  type TriggerSource,
  TriggerStore,
} from "../protocol/index.ts";
import { type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";
import { type Sink, startSink, until } from "./support/sink.ts";

/**
 * Event triggers end to end on real processes and brokers: sources (a JetStream stream, core NATS,
 * RabbitMQ on 127.0.0.1:5672, Mosquitto on 127.0.0.1:1883, cron ticks) → the trigger's consumer on
 * the worker → `queue()` / `scheduled()` in the function, which reports what it saw to a local server.
 */
let cluster: InProcessCluster;
let triggers: TriggerStore;
/** Functions post what they saw to `<sink>/<function name>`, as JSON. */
let sink: Sink;
let sinkUrl: string;

beforeAll(async () => {
  sink = await startSink();
  sinkUrl = sink.url;
  cluster = await startInProcessCluster({
    scheduler: { cronSeconds: true },
    worker: {
      ackWaitMs: 2_000,
      retry: { baseMs: 50, capMs: 200 },
      executorEnv: { HEARTH_EGRESS_ALLOW: "127.0.0.1" },
    },
  });
  triggers = await TriggerStore.open(cluster.nc);
});

afterAll(async () => {
  await cluster?.close();
  await sink?.close();
});

/** A function whose queue() posts each batch's bodies to the sink; a body "poison" is always retried. */
function queueFunction(fn: string): string {
  return `export default {
    async queue(batch, env, ctx) {
      const bodies = [];
      for (const m of batch.messages) {
        if (m.body === "poison") m.retry(); else bodies.push(m.body);
      }
      await fetch(${JSON.stringify(`${sinkUrl}/`)} + ${JSON.stringify(fn)}, {
        method: "POST",
        body: JSON.stringify({ queue: batch.queue, bodies, attempts: batch.messages.map((m) => m.attempts) }),
      });
    },
  };`;
}

async function addTrigger(
  fn: string,
  source: TriggerSource,
  extra: Partial<TriggerRecord> = {},
): Promise<TriggerRecord> {
  const trigger: TriggerRecord = {
    id: TriggerStore.newId(),
    function: fn,
    source,
    ...TRIGGER_DEFAULTS,
    createdAt: new Date().toISOString(),
    ...extra,
  };
  await triggers.put(trigger);
  return trigger;
}

/** What `fn` posted, parsed. */
function seen(fn: string): unknown[] {
  return sink.bodies(fn).map((body) => JSON.parse(body) as unknown);
}

function bodiesOf(fn: string): unknown[] {
  return seen(fn).flatMap((batch) => (batch as { bodies: unknown[] }).bodies);
}

describe("event triggers", () => {
  it("jetstream://: a user's stream is consumed in batches, each message once, acked after queue()", async () => {
    await cluster.hearth.deploy("on-orders", { code: queueFunction("on-orders") });
    const jsm = await jetstreamManager(cluster.nc);
    await jsm.streams.add({
      name: "ORDERS",
      subjects: ["orders.>"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
    });
    // Through the control API's code: it creates the consumer before the trigger exists.
    await createTrigger(
      { function: "on-orders", source: "jetstream://ORDERS/orders.new", batchSize: 5 },
      { functions: await FunctionStore.open(cluster.nc), triggers, jsm },
    );
    const js = jetstream(cluster.nc);
    for (let i = 0; i < 20; i++) await js.publish("orders.new", JSON.stringify({ order: i }));
    await js.publish("orders.other", JSON.stringify({ order: "not mine" }));
    const bodies = await until(
      "20 orders",
      () => (bodiesOf("on-orders").length >= 20 ? bodiesOf("on-orders") : undefined),
      15_000,
    );
    expect(bodies.map((b) => (b as { order: number }).order).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i),
    );
    const batches = seen("on-orders") as { queue: string; bodies: unknown[] }[];
    expect(Math.max(...batches.map((b) => b.bodies.length))).toBeLessThanOrEqual(5);
    expect(batches[0]?.queue).toBe("ORDERS/orders.new");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(bodiesOf("on-orders")).toHaveLength(20); // nothing redelivered
  });

  it("a message the function keeps retrying goes to the dead letters after the trigger's retries; the rest flow", async () => {
    await cluster.hearth.deploy("on-poison", { code: queueFunction("on-poison") });
    const trigger = await addTrigger("on-poison", { kind: "nats", subject: "events.poison" }, { retries: 2 });
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the workers subscribe
    for (const body of ["a", "poison", "b"]) cluster.nc.publish("events.poison", body);
    await until("a and b", () => (bodiesOf("on-poison").length >= 2 ? true : undefined), 15_000);
    const jsm = await jetstreamManager(cluster.nc);
    const letter = await until(
      "the poison's dead letter",
      async () =>
        (await jsm.streams
          .getMessage(STREAMS.deadLetters, { last_by_subj: ASYNC_SUBJECTS.deadLetter("on-poison") })
          .catch(() => null)) ?? undefined,
      15_000,
    );
    expect(letter.string()).toBe("poison");
    expect(letter.header.get(ASYNC_HEADERS.trigger)).toBe(trigger.id);
    expect(letter.header.get(ASYNC_HEADERS.attempts)).toBe("3");
    expect(letter.header.get(ASYNC_HEADERS.origin)).toBe(ASYNC_SUBJECTS.trigger(trigger.id));
    expect(bodiesOf("on-poison").sort()).toEqual(["a", "b"]);
  });

  it("amqp://: messages from a RabbitMQ queue reach queue()", async () => {
    const queue = `hearth-test-${Date.now()}`;
    const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
    const channel = await connection.createChannel();
    await channel.assertQueue(queue, { durable: true });
    try {
      await cluster.hearth.deploy("on-rabbit", { code: queueFunction("on-rabbit") });
      await addTrigger("on-rabbit", { kind: "amqp", url: "amqp://guest:guest@127.0.0.1:5672", queue });
      for (let i = 0; i < 10; i++)
        channel.sendToQueue(queue, Buffer.from(JSON.stringify({ n: i })), {
          contentType: "application/json",
          messageId: `m${i}`,
        });
      const bodies = await until(
        "10 RabbitMQ messages",
        () => (bodiesOf("on-rabbit").length >= 10 ? bodiesOf("on-rabbit") : undefined),
        15_000,
      );
      expect(bodies.map((b) => (b as { n: number }).n).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 10 }, (_, i) => i),
      );
      // Acked at the source once stored.
      const deadline = Date.now() + 5_000;
      while ((await channel.checkQueue(queue)).messageCount > 0 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    } finally {
      await channel.deleteQueue(queue);
      await connection.close();
    }
  });

  it("mqtt://: messages on an MQTT topic reach queue()", async () => {
    const topic = `hearth-test/${Date.now()}`;
    await cluster.hearth.deploy("on-mqtt", { code: queueFunction("on-mqtt") });
    await addTrigger("on-mqtt", { kind: "mqtt", url: "mqtt://127.0.0.1:1883", topic });
    const client = await mqtt.connectAsync("mqtt://127.0.0.1:1883");
    try {
      // The worker's subscription is made as the trigger appears: publish until the first one lands.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      for (let i = 0; i < 5; i++) await client.publishAsync(topic, `reading ${i}`, { qos: 1 });
      const bodies = await until(
        "5 MQTT messages",
        () => (bodiesOf("on-mqtt").length >= 5 ? bodiesOf("on-mqtt") : undefined),
        15_000,
      );
      expect([...bodies].sort()).toEqual(["reading 0", "reading 1", "reading 2", "reading 3", "reading 4"]);
    } finally {
      await client.endAsync();
    }
  });

  it("cron: scheduled() runs once per tick", async () => {
    await cluster.hearth.deploy("on-tick", {
      code: `export default {
        async scheduled(event) {
          await fetch(${JSON.stringify(`${sinkUrl}/on-tick`)}, {
            method: "POST",
            body: JSON.stringify({ cron: event.cron, scheduledTime: event.scheduledTime, type: event.type }),
          });
        },
      };`,
    });
    await addTrigger("on-tick", { kind: "cron", expression: "* * * * * *" });
    const ticks = await until("3 ticks", () => (seen("on-tick").length >= 3 ? seen("on-tick") : undefined), 15_000);
    const times = (ticks as { scheduledTime: number; cron: string; type: string }[]).map((t) => t.scheduledTime);
    expect(new Set(times).size).toBe(times.length); // each tick once
    for (const t of times) expect(t % 1000).toBe(0);
    expect(ticks[0]).toMatchObject({ cron: "* * * * * *", type: "scheduled" });
  });
});
