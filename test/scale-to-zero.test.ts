import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway, type HttpRequest } from "../gateway/index.ts";
import { connectNats } from "../protocol/index.ts";
import { Worker } from "../runtime/index.ts";
import { Scheduler } from "../scheduler/index.ts";
import { HearthClient, type NatsServer, startNatsServer } from "../sdk/index.ts";

const TOKEN = "idle";
let nats: NatsServer;
let nc: NatsConnection;
let gateway: Gateway;
let scheduler: Scheduler;
let worker: Worker;

const get = (target: string): HttpRequest => ({
  method: "GET",
  target,
  headers: [["host", "t"]],
  body: new Uint8Array(),
});
const holders = (fn: string) =>
  scheduler.registry.live(Date.now()).filter((node) => node.functions.includes(fn)).length;

beforeAll(async () => {
  nats = await startNatsServer({});
  nc = await connectNats(nats.url, "idle-test");
  gateway = new Gateway({ nc, token: TOKEN, port: 0 });
  await gateway.start();
  scheduler = new Scheduler({ nc });
  await scheduler.start();
  worker = new Worker({ nc, natsUrl: nats.url, heartbeatMs: 100, executorEnv: { HEARTH_IDLE_MS: "300" } });
  await worker.start();
});

afterAll(async () => {
  await worker?.close();
  await scheduler?.close();
  await gateway?.close();
  await nc?.close();
  await nats?.stop();
});

describe("scale to zero", () => {
  it("unloads an idle function from its node, and the next request brings it back", async () => {
    await new HearthClient({ url: gateway.url, token: TOKEN }).deploy("sleepy", {
      code: `export default { fetch() { return new Response("awake"); } };`,
    });
    expect((await gateway.handle(get("/fn/sleepy"))).status).toBe(200);
    await expect.poll(() => holders("sleepy"), { timeout: 5_000 }).toBe(1);
    // No traffic for longer than HEARTH_IDLE_MS: the executor frees the pool and the node stops reporting it.
    await expect.poll(() => holders("sleepy"), { timeout: 5_000 }).toBe(0);
    const again = await gateway.handle(get("/fn/sleepy"));
    expect([again.status, new TextDecoder().decode(again.body as Uint8Array)]).toEqual([200, "awake"]);
  });
});
