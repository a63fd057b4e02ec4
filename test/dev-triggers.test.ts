import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HearthClient } from "../sdk/index.ts";
import { type DevCluster, startDevCluster } from "./support/cli.ts";
import { type Sink, startSink } from "./support/sink.ts";

/**
 * `nats://` and `jetstream://` triggers under `hearth dev`, fed the way an application feeds them:
 * connected with the app URL `hearth dev` printed, through plain nats.js (default inbox), to
 * subjects and a stream of its own. Every component runs on its least-privilege identity, so this
 * also holds the worker's ingest (read as the app, written as the worker) to the permission matrix.
 */
let cluster: DevCluster;
let hearth: HearthClient;
let app: NatsConnection;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
  cluster = await startDevCluster({ HEARTH_EGRESS_ALLOW: "127.0.0.1" });
  hearth = new HearthClient({ url: cluster.url, token: cluster.token });
  // nats.js 3 ignores credentials in a URL: an application hands them over as user and pass.
  const printed = new URL(cluster.appNatsUrl ?? "");
  app = await connect({
    servers: printed.host,
    user: decodeURIComponent(printed.username),
    pass: decodeURIComponent(printed.password),
  });
  await hearth.deploy("consumer", {
    code: `export default { async queue(batch) {
      for (const m of batch.messages) await fetch(${JSON.stringify(`${sink.url}/posted`)}, { method: "POST", body: String(m.body) });
    } };`,
  });
}, 45_000);

afterAll(async () => {
  await app?.close();
  await cluster?.stop();
  await sink?.close();
});

/** Waits until the sink received `body`; fails after `timeoutMs` with the cluster's output. */
async function received(body: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!sink.bodies("posted").includes(body)) {
    if (Date.now() > deadline)
      throw new Error(`the sink never got ${body}; it got ${sink.bodies("posted")}\n${cluster.output()}`);
    await sleep(50);
  }
}

describe("event triggers fed through the app identity under hearth dev", () => {
  it("hearth dev prints an app NATS URL with the app user's credentials", () => {
    expect(cluster.appNatsUrl).toMatch(/^nats:\/\/app:[A-Za-z0-9_-]+@127\.0\.0\.1:\d+$/);
    expect(new URL(cluster.appNatsUrl ?? "").host).toBe(new URL(cluster.natsUrl).host);
  });

  it("a message the app publishes on a nats:// trigger's subject runs the function's queue()", async () => {
    await hearth.addTrigger("consumer", { source: "nats://orders.created" });
    // Core NATS keeps nothing for a subject no worker reads yet (the worker subscribes once it sees
    // the trigger): publish until one arrives, then one more that must arrive too.
    const deadline = Date.now() + 15_000;
    for (let i = 0; !sink.bodies("posted").some((body) => body.startsWith("created-")); i++) {
      if (Date.now() > deadline) throw new Error(`no nats:// message arrived\n${cluster.output()}`);
      app.publish("orders.created", `created-${i}`);
      await sleep(200);
    }
    app.publish("orders.created", "created-last");
    await received("created-last");
  });

  it("a message the app stores in its own stream runs a jetstream:// trigger's function", async () => {
    const jsm = await jetstreamManager(app);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.paid.>"] });
    // The gateway creates the trigger's consumer on the stream before it answers: nothing is missed.
    await hearth.addTrigger("consumer", { source: "jetstream://ORDERS/orders.paid.>" });
    const ack = await jetstream(app).publish("orders.paid.eu", "paid-1");
    expect(ack.stream).toBe("ORDERS");
    await received("paid-1");
    // Acked by the worker: the consumer holds nothing pending.
    await expect
      .poll(async () => (await jsm.consumers.list("ORDERS").next()).map((c) => c.num_ack_pending), { timeout: 5_000 })
      .toEqual([0]);
  });

  it("no component was refused anything by NATS along the way", () => {
    expect(cluster.output()).not.toMatch(/Permissions Violation|NATS reported an error|trigger source unreachable/);
  });
});
