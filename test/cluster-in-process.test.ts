import type { Msg, Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { encodeErrorReply, SUBJECTS } from "../protocol/index.ts";
import { Worker } from "../runtime/index.ts";
import { Scheduler } from "../scheduler/index.ts";
import { bodyText, get, type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";

/**
 * Gateway, scheduler and worker as objects in this process (the worker's executors are still real
 * child processes), so each can be started, stopped and inspected on its own.
 */
let cluster: InProcessCluster;
const json = (res: { body: Uint8Array | string }) => JSON.parse(bodyText(res as never));

beforeAll(async () => {
  cluster = await startInProcessCluster({ scheduler: false, worker: false });
  await cluster.hearth.deploy("echo", {
    code: `export default { fetch(r) { return new Response("pong " + new URL(r.url).pathname); } };`,
  });
});

afterAll(async () => {
  await cluster?.close();
});

describe("cold path without capacity", () => {
  it("is not ready while no worker reports", async () => {
    const res = await cluster.gateway.handle(get("/readyz"));
    expect(res.status).toBe(503);
    expect(json(res).reasons).toContain("no worker node heard from recently");
  });

  it("with no scheduler running: 503 ERR_NO_CAPACITY with Retry-After", async () => {
    const res = await cluster.gateway.handle(get("/fn/echo"));
    expect(res.status).toBe(503);
    expect(res.headers).toContainEqual(["retry-after", "1"]);
    expect(json(res).error).toMatchObject({ code: "ERR_NO_CAPACITY", message: "No scheduler is running" });
  });

  it("with a scheduler but no worker node: held, then 503 ERR_NO_CAPACITY", async () => {
    const scheduler = new Scheduler({ nc: cluster.nc, waitForNodeMs: 300 });
    await scheduler.start();
    try {
      const res = await cluster.gateway.handle(get("/fn/echo"));
      expect(res.status).toBe(503);
      expect(json(res).error.message).toMatch(/No worker node could take echo in time/);
    } finally {
      await scheduler.close();
    }
  });
});

describe("executors that stop answering (no scheduler, so only the fake executors hold these functions)", () => {
  it("a responder that never answers ends in 504 after the timeout plus grace", async () => {
    await cluster.hearth.deploy("silent", {
      code: `export default { fetch() { return new Response("x"); } };`,
      timeoutMs: 100,
    });
    // Stands in for an executor that took the request and lost it: reports the function, never replies.
    const blackHole = await impostor(cluster, "ghost-1", "silent");
    try {
      const res = await cluster.gateway.handle(get("/fn/silent"));
      expect(res.status).toBe(504);
      expect(json(res).error.code).toBe("ERR_FUNCTION_TIMEOUT");
    } finally {
      blackHole.unsubscribe();
    }
  });

  it("a pool that refuses a request as it unloads (it did not run) is not the answer: the request moves on", async () => {
    await cluster.hearth.deploy("refused", { code: `export default { fetch() { return new Response("x"); } };` });
    let refusals = 0;
    const closing = await impostor(cluster, "ghost-3", "refused", (msg) => {
      refusals++;
      const [headers, payload] = encodeErrorReply("ERR_NO_CAPACITY", "refused was unloaded as the request arrived");
      msg.respond(payload, { headers });
    });
    try {
      const res = await cluster.gateway.handle(get("/fn/refused"));
      // Dropped that executor and took the cold path, which has no scheduler in this block.
      expect(refusals).toBe(1);
      expect(json(res).error).toMatchObject({ code: "ERR_NO_CAPACITY", message: "No scheduler is running" });
      expect(cluster.gateway.routes().refused).toBeUndefined();
    } finally {
      closing.unsubscribe();
    }
  });

  it("an executor that dies fails its in-flight requests at once with ERR_EXECUTOR_LOST, not at the timeout", async () => {
    await cluster.hearth.deploy("doomed-exec", {
      code: `export default { fetch() { return new Response("x"); } };`,
      timeoutMs: 20_000,
    });
    const blackHole = await impostor(cluster, "ghost-2", "doomed-exec");
    try {
      const started = performance.now();
      const pending = cluster.gateway.handle(get("/fn/doomed-exec"));
      await new Promise((resolve) => setTimeout(resolve, 100));
      cluster.nc.publish(SUBJECTS.executorLost, JSON.stringify({ node: "ghost", executor: "ghost-2" }));
      const res = await pending;
      expect(res.status).toBe(502);
      expect(json(res).error.code).toBe("ERR_EXECUTOR_LOST");
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      blackHole.unsubscribe();
    }
  });
});

describe("scale from zero and executor crashes", () => {
  let worker: Worker;

  beforeAll(async () => {
    await cluster.startScheduler();
    worker = await cluster.startWorker({ id: "w1" });
  });

  it("a request that arrives while no pool exists is held by the activator and answered", async () => {
    const res = await cluster.gateway.handle(get("/fn/echo/first"));
    expect([res.status, bodyText(res)]).toEqual([200, "pong /first"]);
  });

  it("concurrent cold requests for a new function all succeed", async () => {
    await cluster.hearth.deploy("burst", { code: `export default { fetch() { return new Response("ok"); } };` });
    const results = await Promise.all(Array.from({ length: 20 }, () => cluster.gateway.handle(get("/fn/burst"))));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
  });

  it("when an executor is killed, the worker restarts it and the function is served again", async () => {
    const [before] = worker.executorPids;
    expect(before).toBeDefined();
    process.kill(before as number, "SIGKILL");
    // Requests sent before NATS notices the dead connection would wait for their timeout (see the
    // issue 3 note); this test is about recovery, so it waits for the supervisor to notice first.
    await expect.poll(() => worker.executorPids[0] !== before, { timeout: 10_000 }).toBe(true);
    const res = await cluster.gateway.handle(get("/fn/echo/after-crash"));
    expect(res.status).toBe(200);
    expect(worker.executorPids[0]).not.toBe(before);
    expect((await cluster.gateway.handle(get("/readyz"))).status).toBe(200);
  });

  it.each(["evil.test/x?y", "[1.2.3.4]"])(
    "a Host header %j that makes no URL is a 400, not a function error",
    async (host) => {
      const res = await cluster.gateway.handle({ ...get("/fn/echo"), headers: [["host", host]] });
      expect(res.status).toBe(400);
      expect(json(res).error.code).toBe("ERR_BAD_REQUEST");
    },
  );

  it("a malformed escape in a function name is a 400", async () => {
    const res = await cluster.gateway.handle(get("/fn/%E0%A4"));
    expect([res.status, json(res).error.code]).toEqual([400, "ERR_INVALID_NAME"]);
  });

  it("garbage on the heartbeat subject is ignored and the scheduler keeps placing functions", async () => {
    cluster.nc.publish(SUBJECTS.heartbeat, "not json");
    cluster.nc.publish(SUBJECTS.heartbeat, JSON.stringify({ id: 5, functions: "x" }));
    await cluster.nc.flush();
    await cluster.hearth.deploy("after-garbage", {
      code: `export default { fetch() { return new Response("fine"); } };`,
    });
    expect((await cluster.gateway.handle(get("/fn/after-garbage"))).status).toBe(200);
  });

  it("garbage on the load and executor-lost subjects is ignored by gateway and scheduler", async () => {
    cluster.nc.publish(SUBJECTS.load, "not json");
    cluster.nc.publish(SUBJECTS.load, JSON.stringify({ node: "x", executor: "bad id!", seq: 1, functions: [] }));
    cluster.nc.publish(SUBJECTS.executorLost, JSON.stringify({ node: 1 }));
    await cluster.nc.flush();
    await cluster.hearth.deploy("after-report-garbage", {
      code: `export default { fetch() { return new Response("fine"); } };`,
    });
    expect((await cluster.gateway.handle(get("/fn/after-report-garbage"))).status).toBe(200);
  });

  it("a worker refuses malformed commands and commands from a deposed leader (older epoch)", async () => {
    // Its own node: raising a node's epoch past the live leader's would fence that leader out of it.
    const fenced = new Worker({ nc: cluster.nc, natsUrl: cluster.nats.url, id: "fence-test", executors: 1 });
    await fenced.start();
    onTestFinished(() => fenced.close());
    const command = async (body: unknown) =>
      (await cluster.nc.request(SUBJECTS.workerCommand("fence-test"), JSON.stringify(body), { timeout: 5_000 })).json<{
        ok: boolean;
        code?: string;
      }>();
    expect(await command({ type: "assign", epoch: 1, fn: "x", isolates: -1 })).toMatchObject({
      ok: false,
      code: "ERR_BAD_REQUEST",
    });
    const current = cluster.scheduler?.status().leader?.epoch ?? 0;
    expect(await command({ type: "assign", epoch: current + 100, fn: "echo", isolates: 1 })).toMatchObject({
      ok: true,
    });
    expect(await command({ type: "assign", epoch: current + 99, fn: "echo", isolates: 0 })).toMatchObject({
      ok: false,
      code: "ERR_BAD_REQUEST",
    });
  });

  it("carries a 6 MB request and a 6 MB response through the full path (HTTP, NATS, isolate)", async () => {
    await cluster.hearth.deploy("mirror", {
      code: `export default { async fetch(r) { const b = await r.arrayBuffer(); return new Response(b, { headers: { "x-len": String(b.byteLength) } }); } };`,
    });
    const sixMb = new Uint8Array(6 * 1024 * 1024).map((_, i) => i % 251);
    const res = await cluster.hearth.invoke("mirror", { body: sixMb });
    expect([res.status, res.headers["x-len"], res.body.byteLength]).toEqual([
      200,
      String(sixMb.byteLength),
      sixMb.byteLength,
    ]);
    expect(Buffer.compare(Buffer.from(res.body), Buffer.from(sixMb))).toBe(0);
  });

  it("a function's own body limit applies to its requests and responses (413)", async () => {
    await cluster.hearth.deploy("small", {
      code: `export default { async fetch(r) { const n = Number(new URL(r.url).searchParams.get("n") ?? 0); await r.arrayBuffer(); return new Response("x".repeat(n)); } };`,
      maxBodyBytes: 2048,
    });
    expect((await cluster.hearth.invoke("small", { body: "y".repeat(2048) })).status).toBe(200);
    const bigRequest = await cluster.hearth.invoke("small", { body: "y".repeat(2049) });
    expect([bigRequest.status, JSON.parse(bigRequest.text()).error.code]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE"]);
    const bigResponse = await cluster.hearth.invoke("small", { path: "/?n=3000" });
    expect([bigResponse.status, JSON.parse(bigResponse.text()).error.code]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE"]);
    await expect(
      cluster.hearth.deploy("too-big", { code: "export default {fetch(){}}", maxBodyBytes: 7 * 1024 * 1024 }),
    ).rejects.toMatchObject({
      status: 400,
      code: "ERR_BAD_REQUEST",
    });
  });

  // Last in this file: it restarts nats-server under everything else.
  it("while NATS is down for 5 s, every request is answered within 7 s (503 with Retry-After at once, or served)", async () => {
    expect((await cluster.gateway.handle(get("/fn/echo/before"))).status).toBe(200);
    await cluster.nats.kill();
    const outcomes: Promise<{ status: number; ms: number; retryAfter: boolean }>[] = [];
    for (let i = 0; i < 20; i++) {
      const sent = performance.now();
      outcomes.push(
        cluster.gateway.handle(get("/fn/echo/during")).then((res) => ({
          status: res.status,
          ms: performance.now() - sent,
          retryAfter: res.headers.some(([name]) => name === "retry-after"),
        })),
      );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(json(await cluster.gateway.handle(get("/readyz"))).reasons).toContain("not connected to NATS");
    await cluster.nats.restart();
    for (const outcome of await Promise.all(outcomes)) {
      expect(outcome.ms).toBeLessThan(7_000);
      if (outcome.status !== 200) expect(outcome).toMatchObject({ status: 503, retryAfter: true });
    }
    await expect.poll(async () => (await cluster.gateway.handle(get("/readyz"))).status, { timeout: 15_000 }).toBe(200);
    await expect
      .poll(async () => (await cluster.gateway.handle(get("/fn/echo/back"))).status, { timeout: 15_000 })
      .toBe(200);
  });
});

/** A fake executor that reports holding `fn` and swallows its invocations: a stand-in for one that dies mid-request. */
async function impostor(
  cluster: InProcessCluster,
  executor: string,
  fn: string,
  answer: (msg: Msg) => void = () => {},
): Promise<Subscription> {
  const { nc, gateway } = cluster;
  const sub = nc.subscribe(SUBJECTS.invoke(executor, fn), { callback: (_err, msg) => answer(msg) });
  const functions = [
    { name: fn, version: "x", inFlight: 0, isolates: 1, maxIsolates: 1, concurrency: 1, invocations: 0 },
  ];
  nc.publish(SUBJECTS.load, JSON.stringify({ node: "ghost", executor, pid: 1, seq: 1, intervalMs: 500, functions }));
  await expect.poll(() => gateway.routes()[fn]?.map((e) => e.executor)).toEqual([executor]);
  return sub;
}
