/**
 * Broker ingest against the real RabbitMQ (127.0.0.1:5672, guest) and Mosquitto (127.0.0.1:1883,
 * anonymous) of this machine and a nats-server each test starts. Every test uses its own queue,
 * topic and trigger id, and removes the queue and MQTT sessions it made.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StoredMsg,
} from "@nats-io/jetstream";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { type ChannelModel, type ConfirmChannel, connect as connectAmqp, type Options } from "amqplib";
import { connectAsync as connectMqtt } from "mqtt";
import { describe, expect, it } from "vitest";
import { ASYNC_HEADERS, ASYNC_SUBJECTS, STREAMS } from "../../protocol/async.ts";
import { ensureAsyncStreams } from "../../protocol/async-streams.ts";
import { type NatsServer, startNatsServer } from "../../sdk/dev/nats-server.ts";
import { AmqpIngester, formatTriggerSource, MqttIngester, parseTriggerSource } from "./index.ts";

const AMQP_URL = "amqp://guest:guest@127.0.0.1:5672";
const MQTT_URL = "mqtt://127.0.0.1:1883";
/** Short, so outages show up as failures within a test's budget. */
const PUBLISH_TIMEOUT_MS = 300;

interface Nats {
  readonly server: NatsServer;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  [Symbol.asyncDispose](): Promise<void>;
}

async function startNats(): Promise<Nats> {
  const server = await startNatsServer({});
  // Retries forever, fast: outage tests kill and restart the server under this connection.
  const nc = await connectNats({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  // 1 s, not 5: a request lost while the server restarts must not eat the test's time.
  const jsm = await jetstreamManager(nc, { timeout: 1_000 });
  await ensureAsyncStreams(jsm);
  return {
    server,
    nc,
    jsm,
    js: jetstream(nc),
    [Symbol.asyncDispose]: async () => {
      await nc.close();
      await server.stop();
    },
  };
}

/** Waits until `check` returns true, polling; fails with `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // A check may throw while NATS reconnects (request timeout): that is a "not yet".
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Waits for `count` messages in the trigger stream (the test's nats-server holds no others) and reads them. */
async function storedMessages(jsm: JetStreamManager, count: number): Promise<StoredMsg[]> {
  await waitFor(`${count} messages in the stream`, async () => {
    const { state } = await jsm.streams.info(STREAMS.triggers);
    return state.messages >= count;
  });
  const { state } = await jsm.streams.info(STREAMS.triggers);
  const messages: StoredMsg[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(STREAMS.triggers, { seq });
    if (msg) messages.push(msg);
  }
  return messages;
}

interface RabbitQueue {
  readonly name: string;
  readonly channel: ConfirmChannel;
  publish(body: Uint8Array | string, options?: Options.Publish): Promise<void>;
  /** Messages ready in the queue (not counting those delivered and unacked). */
  ready(): Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function declareQueue(): Promise<RabbitQueue> {
  const model: ChannelModel = await connectAmqp(AMQP_URL);
  const channel = await model.createConfirmChannel();
  const name = `hearth-test-${randomUUID()}`;
  await channel.assertQueue(name, { durable: false });
  return {
    name,
    channel,
    publish: async (body, options) => {
      channel.sendToQueue(name, Buffer.from(body), options);
      await channel.waitForConfirms();
    },
    ready: async () => (await channel.checkQueue(name)).messageCount,
    [Symbol.asyncDispose]: async () => {
      await channel.deleteQueue(name);
      await model.close();
    },
  };
}

/** Ends a persistent MQTT session for good, so Mosquitto does not keep it (and its subscription). */
async function forgetMqttSession(clientId: string): Promise<void> {
  const client = await connectMqtt(MQTT_URL, { clientId, clean: true, protocolVersion: 5, reconnectPeriod: 0 });
  await client.endAsync();
}

async function mqttPublisher() {
  const client = await connectMqtt(MQTT_URL, { protocolVersion: 5, reconnectPeriod: 0 });
  return {
    publish: (topic: string, body: Uint8Array | string, contentType?: string) =>
      client.publishAsync(topic, Buffer.from(body), { qos: 1, ...(contentType && { properties: { contentType } }) }),
    [Symbol.asyncDispose]: () => client.endAsync(),
  };
}

function triggerId(): string {
  return `t-${randomUUID().slice(0, 8)}`;
}

const texts = (messages: StoredMsg[]) => messages.map((m) => m.string()).sort();
const range = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe("trigger sources", () => {
  it("parses the four source URL forms, keeping credentials but masking them for display", () => {
    const amqp = parseTriggerSource("amqp://app:s3cr%40t@rabbit.internal:5672/orders");
    expect(amqp).toEqual({ kind: "amqp", url: "amqp://app:s3cr%40t@rabbit.internal:5672", queue: "orders" });
    expect(formatTriggerSource(amqp)).toBe("amqp://app:***@rabbit.internal:5672/orders");
    expect(parseTriggerSource("amqps://u:p@h/prod/billing%2Fin?heartbeat=30")).toEqual({
      kind: "amqp",
      url: "amqps://u:p@h/prod?heartbeat=30",
      queue: "billing/in",
    });
    const mqtt = parseTriggerSource("mqtt://dev:pw@127.0.0.1:1883/sensors/+/temp/#");
    expect(mqtt).toEqual({ kind: "mqtt", url: "mqtt://dev:pw@127.0.0.1:1883", topic: "sensors/+/temp/#" });
    expect(formatTriggerSource(mqtt)).toBe("mqtt://dev:***@127.0.0.1:1883/sensors/+/temp/#");
    expect(parseTriggerSource("nats://orders.*.created")).toEqual({ kind: "nats", subject: "orders.*.created" });
    expect(parseTriggerSource("jetstream://ORDERS/orders.>")).toEqual({
      kind: "jetstream",
      stream: "ORDERS",
      subject: "orders.>",
    });
  });

  it.each([
    ["kafka://broker/topic", /Unsupported trigger source.*amqp:\/\/user:pass@host:5672\/<queue>/],
    ["amqp://guest:guest@127.0.0.1:5672", /Expected amqp:\/\/user:pass@host:5672\/<queue>/],
    ["amqp://guest:guest@127.0.0.1:5672/a/b/c", /Expected amqp:.*<vhost>\/<queue>/],
    ["amqp://guest:hunter2@:5672/q", /Not a valid URL|needs a host/],
    [`amqp://h/${"q".repeat(256)}`, /at most 255 bytes/],
    ["mqtt://127.0.0.1:1883", /Expected mqtt:\/\/host:1883\/<topic>/],
    ["mqtt://127.0.0.1:1883/a/#/b", /"#" must be a whole level and the last one/],
    ["mqtt://127.0.0.1:1883/a/b+", /"\+" must be a whole level/],
    ["mqtt://127.0.0.1:1883/$share/g/a", /Give the plain topic/],
    ["mqtt://127.0.0.1:99999/a", /Not a valid URL/],
    ["nats://127.0.0.1:4222", /a subject on Hearth's own NATS, not a server address/],
    ["nats://orders..created", /Invalid NATS subject/],
    ["nats://orders.>.x", /Invalid NATS subject/],
    ["nats://hearth.trigger.x", /covers Hearth's own subjects/],
    ["nats://>", /covers Hearth's own subjects/],
    ["jetstream://ORDERS", /Expected jetstream:\/\/<stream>\/<subject>/],
    ["jetstream://OR.DERS/a", /Invalid JetStream stream name/],
    ["jetstream://HEARTH_TRIGGERS/a", /Hearth's own stream/],
  ])("rejects %s with a clear message", (input, message) => {
    expect(() => parseTriggerSource(input)).toThrow(message);
    try {
      parseTriggerSource(input);
    } catch (err) {
      expect((err as { code?: string }).code).toBe("ERR_BAD_REQUEST");
      expect(String(err)).not.toContain("hunter2");
    }
  });
});

describe("RabbitMQ ingest", () => {
  it("moves messages into the trigger's stream with bytes, content type and trigger header intact", async () => {
    await using nats = await startNats();
    await using queue = await declareQueue();
    const id = triggerId();
    await using ingester = new AmqpIngester({ triggerId: id, js: nats.js, url: AMQP_URL, queue: queue.name });
    await ingester.start();

    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    await queue.publish(binary, { contentType: "application/octet-stream" });
    await queue.publish("second", { messageId: "m-2" });
    const [first, second] = await storedMessages(nats.jsm, 2);

    expect(first?.subject).toBe(ASYNC_SUBJECTS.trigger(id));
    expect(first?.data).toEqual(binary);
    expect(first?.header.get(ASYNC_HEADERS.trigger)).toBe(id);
    expect(first?.header.get("content-type")).toBe("application/octet-stream");
    expect(first?.header.get("Nats-Msg-Id")).toBe("");
    expect(second?.string()).toBe("second");
    expect(second?.header.get("Nats-Msg-Id")).toBe(`${id}:m-2`);
    expect(second?.header.has("content-type")).toBe(false);

    await ingester.stop();
    // Stopping closed the channel: anything delivered but unacked would be back in the queue.
    expect(await queue.ready()).toBe(0);
    expect(ingester.counters).toEqual({ ingested: 2, duplicates: 0, failures: 0, dropped: 0 });
  });

  it("keeps messages in RabbitMQ while NATS is down and acks them only once JetStream has them", async () => {
    await using nats = await startNats();
    await using queue = await declareQueue();
    const prefetch = 2;
    await using ingester = new AmqpIngester({
      triggerId: triggerId(),
      js: nats.js,
      url: AMQP_URL,
      queue: queue.name,
      prefetch,
      publishTimeoutMs: PUBLISH_TIMEOUT_MS,
      nackDelayMs: 100,
    });
    await ingester.start();

    await nats.server.kill();
    const bodies = range(10, "outage");
    // Ids, so a publish buffered by nats.js during the outage and flushed on reconnect is stored once.
    for (const body of bodies) await queue.publish(body, { messageId: body });
    await waitFor("failed publishes", () => ingester.counters.failures >= 2);
    // At most `prefetch` are out with the ingester (unacked); the rest wait, ready, in the queue.
    expect(await queue.ready()).toBeGreaterThanOrEqual(bodies.length - prefetch);
    expect(ingester.counters.ingested).toBe(0);

    await nats.server.restart();
    expect(texts(await storedMessages(nats.jsm, bodies.length))).toEqual([...bodies].sort());
    await waitFor("the queue to drain", async () => (await queue.ready()) === 0);
    await ingester.stop();
    // After the channel closed nothing came back: every delivery had been acked.
    expect(await queue.ready()).toBe(0);
    expect(ingester.counters.ingested).toBe(bodies.length);
  });

  it("stores a message published twice with one messageId once", async () => {
    await using nats = await startNats();
    await using queue = await declareQueue();
    await using ingester = new AmqpIngester({ triggerId: triggerId(), js: nats.js, url: AMQP_URL, queue: queue.name });
    await ingester.start();

    await queue.publish("once", { messageId: "order-42" });
    await queue.publish("once", { messageId: "order-42" });
    await queue.publish("after", { messageId: "order-43" });
    await waitFor("three messages handled", () => ingester.counters.ingested + ingester.counters.duplicates === 3);

    expect(texts(await storedMessages(nats.jsm, 2))).toEqual(["after", "once"]);
    expect(ingester.counters).toMatchObject({ ingested: 2, duplicates: 1 });
    await waitFor("the queue to drain", async () => (await queue.ready()) === 0);
  });

  it("fails to start with a clear error when the queue does not exist, and declares nothing", async () => {
    await using nats = await startNats();
    const missing = `hearth-missing-${randomUUID()}`;
    const ingester = new AmqpIngester({ triggerId: triggerId(), js: nats.js, url: AMQP_URL, queue: missing });
    await expect(ingester.start()).rejects.toMatchObject({
      code: "ERR_BAD_REQUEST",
      message: expect.stringMatching(
        /RabbitMQ has no queue "hearth-missing-.*amqp:\/\/guest:\*\*\*@.*does not create queues/,
      ),
    });
    await ingester.stop();

    const model = await connectAmqp(AMQP_URL);
    const channel = await model.createChannel();
    channel.on("error", () => {}); // the 404 below closes this channel, as expected
    await expect(channel.checkQueue(missing)).rejects.toMatchObject({ code: 404 });
    await model.close();
  });

  it("fails to start with a clear error when RabbitMQ refuses the credentials", async () => {
    await using nats = await startNats();
    const ingester = new AmqpIngester({
      triggerId: triggerId(),
      js: nats.js,
      url: "amqp://guest:wrong-password@127.0.0.1:5672",
      queue: "any",
    });
    const failure = ingester.start();
    await expect(failure).rejects.toMatchObject({ code: "ERR_UNAVAILABLE", message: /ACCESS_REFUSED|403/ });
    await expect(failure).rejects.not.toThrow(/wrong-password/);
    await ingester.stop();
  });
});

describe("MQTT ingest", () => {
  it("moves messages into the trigger's stream with bytes, MQTT 5 content type and trigger header intact", async () => {
    await using nats = await startNats();
    await using publisher = await mqttPublisher();
    const id = triggerId();
    const topic = `hearth-test/${id}/in`;
    try {
      await using ingester = new MqttIngester({
        triggerId: id,
        js: nats.js,
        url: MQTT_URL,
        topic: `hearth-test/${id}/#`,
      });
      await ingester.start();

      const binary = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
      await publisher.publish(topic, binary, "application/cbor");
      await publisher.publish(topic, "plain");
      const [first, second] = await storedMessages(nats.jsm, 2);

      expect(first?.subject).toBe(ASYNC_SUBJECTS.trigger(id));
      expect(first?.data).toEqual(binary);
      expect(first?.header.get(ASYNC_HEADERS.trigger)).toBe(id);
      expect(first?.header.get("content-type")).toBe("application/cbor");
      expect(second?.string()).toBe("plain");
      expect(second?.header.has("content-type")).toBe(false);
      expect(ingester.counters).toEqual({ ingested: 2, duplicates: 0, failures: 0, dropped: 0 });
    } finally {
      await forgetMqttSession(`hearth-${id}`);
    }
  });

  it("leaves messages in the persistent session while NATS is down, even across an ingester restart", async () => {
    await using nats = await startNats();
    await using publisher = await mqttPublisher();
    const id = triggerId();
    const topic = `hearth-test/${id}`;
    const options = { triggerId: id, js: nats.js, url: MQTT_URL, topic, publishTimeoutMs: PUBLISH_TIMEOUT_MS };
    try {
      const first = new MqttIngester(options);
      await first.start();
      await nats.server.kill();
      const bodies = range(10, "outage");
      for (const body of bodies) await publisher.publish(topic, body);
      await waitFor("failed publishes", () => first.counters.failures >= 2);
      // The only copy outside Mosquitto dies with this ingester: none was PUBACKed.
      await first.stop();
      expect(first.counters.ingested).toBe(0);

      await nats.server.restart();
      await using second = new MqttIngester(options);
      await second.start();
      const stored = await storedMessages(nats.jsm, bodies.length);
      expect(texts(stored)).toEqual([...bodies].sort());
      expect(second.counters.ingested).toBe(bodies.length);
    } finally {
      await forgetMqttSession(`hearth-${id}`);
    }
  });

  it("retries in process while NATS is down and PUBACKs each message once JetStream has it", async () => {
    await using nats = await startNats();
    await using publisher = await mqttPublisher();
    const id = triggerId();
    const topic = `hearth-test/${id}`;
    const options = { triggerId: id, js: nats.js, url: MQTT_URL, topic, publishTimeoutMs: PUBLISH_TIMEOUT_MS };
    try {
      const ingester = new MqttIngester(options);
      await ingester.start();
      await nats.server.kill();
      const bodies = range(5, "retried");
      for (const body of bodies) await publisher.publish(topic, body);
      await waitFor("failed publishes", () => ingester.counters.failures >= 2);
      await nats.server.restart();
      expect(texts(await storedMessages(nats.jsm, bodies.length))).toEqual([...bodies].sort());
      // Retries of one receipt share an id: a publish nats.js flushed after reconnecting is not stored twice.
      await sleep(200);
      expect((await nats.jsm.streams.info(STREAMS.triggers)).state.messages).toBe(bodies.length);
      await ingester.stop();

      // All PUBACKed: the session holds nothing for the next ingester.
      await using next = new MqttIngester(options);
      await next.start();
      await sleep(300);
      expect(next.counters.ingested + next.counters.duplicates).toBe(0);
    } finally {
      await forgetMqttSession(`hearth-${id}`);
    }
  });

  it("fails to start with a clear error when the broker cannot be reached", async () => {
    await using nats = await startNats();
    const ingester = new MqttIngester({ triggerId: triggerId(), js: nats.js, url: "mqtt://127.0.0.1:1", topic: "a" });
    await expect(ingester.start()).rejects.toMatchObject({
      code: "ERR_UNAVAILABLE",
      message: expect.stringMatching(/Cannot connect to MQTT at mqtt:\/\/127.0.0.1:1 topic "a": .*ECONNREFUSED/),
    });
    await ingester.stop();
  });

  it("receives what was published while no ingester ran, and PUBACKs it once stored", async () => {
    await using nats = await startNats();
    await using publisher = await mqttPublisher();
    const id = triggerId();
    const topic = `hearth-test/${id}`;
    const options = { triggerId: id, js: nats.js, url: MQTT_URL, topic };
    try {
      const first = new MqttIngester(options);
      await first.start();
      await publisher.publish(topic, "live");
      await storedMessages(nats.jsm, 1);
      await first.stop();

      await publisher.publish(topic, "while-away-1");
      await publisher.publish(topic, "while-away-2");
      const second = new MqttIngester(options);
      await second.start();
      expect(texts(await storedMessages(nats.jsm, 3))).toEqual(["live", "while-away-1", "while-away-2"]);
      await second.stop();

      // Acked: a third session gets nothing again.
      await using third = new MqttIngester(options);
      await third.start();
      await sleep(300);
      expect(third.counters.ingested).toBe(0);
    } finally {
      await forgetMqttSession(`hearth-${id}`);
    }
  });

  it("splits one topic between two workers of a trigger through the shared subscription", async () => {
    await using nats = await startNats();
    await using publisher = await mqttPublisher();
    const id = triggerId();
    const topic = `hearth-test/${id}`;
    try {
      const options = { triggerId: id, js: nats.js, url: MQTT_URL, topic };
      await using a = new MqttIngester({ ...options, memberId: "a" });
      await using b = new MqttIngester({ ...options, memberId: "b" });
      await Promise.all([a.start(), b.start()]);

      const bodies = range(20, "shared");
      for (const body of bodies) await publisher.publish(topic, body);
      expect(texts(await storedMessages(nats.jsm, bodies.length))).toEqual([...bodies].sort());
      await sleep(200); // a copy per worker would show up here
      expect((await nats.jsm.streams.info(STREAMS.triggers)).state.messages).toBe(bodies.length);
      expect(a.counters.ingested).toBeGreaterThan(0);
      expect(b.counters.ingested).toBeGreaterThan(0);
    } finally {
      await forgetMqttSession(`hearth-${id}-a`);
      await forgetMqttSession(`hearth-${id}-b`);
    }
  });
});
