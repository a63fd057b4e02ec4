import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClusterStatus } from "../protocol/index.ts";
import { type ComponentProcess, spawnComponent } from "./support/components.ts";
import { bodyText, get, type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

/**
 * The scheduler on real processes: three worker nodes (one executor each) and two schedulers as
 * `hearth worker` / `hearth scheduler` child processes, a gateway in this process, one nats-server.
 * Machines are paused and crashed by signalling a worker's whole process tree.
 */
let cluster: InProcessCluster;
const workers = new Map<string, ComponentProcess>();
const schedulers: ComponentProcess[] = [];
const schedulerIds = ["s1", "s2"];

const SLOW_FN = `export default { async fetch() { await new Promise((r) => setTimeout(r, 40)); return new Response("ok"); } };`;

async function status(): Promise<ClusterStatus> {
  const res = await cluster.gateway.handle({
    method: "GET",
    target: "/v1/status",
    headers: [["authorization", `Bearer ${TEST_TOKEN}`]],
    body: new Uint8Array(),
  });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${bodyText(res)}`);
  return JSON.parse(bodyText(res));
}

const fnStatus = async (name: string) => (await status()).functions.find((f) => f.name === name);

interface LoadResult {
  readonly ok: number;
  /** Failed requests with when they were sent (ms since the load started) and their error code. */
  readonly failures: { sentAtMs: number; code: string }[];
}

/** `clients` closed-loop clients calling `fn` until `until` resolves. */
async function steadyLoad(fn: string, clients: number, until: Promise<unknown>): Promise<LoadResult> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const started = performance.now();
  const result: LoadResult = { ok: 0, failures: [] };
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (!done) {
        const sentAtMs = performance.now() - started;
        const res = await cluster.gateway.handle(get(`/fn/${fn}`));
        if (res.status === 200) (result as { ok: number }).ok++;
        else result.failures.push({ sentAtMs, code: JSON.parse(bodyText(res)).error.code });
      }
    }),
  );
  return result;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `read` until `accept` holds (expect.poll works only inside a test). */
async function until<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (performance.now() > deadline) throw new Error(`still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

beforeAll(async () => {
  cluster = await startInProcessCluster({ scheduler: false, worker: false });
  const env = { NATS_URL: cluster.nats.url, HEARTH_EXECUTORS: "1" };
  for (const id of ["n1", "n2", "n3"]) workers.set(id, spawnComponent("worker", { ...env, HEARTH_WORKER_ID: id }));
  for (const id of schedulerIds) schedulers.push(spawnComponent("scheduler", { ...env, HEARTH_SCHEDULER_ID: id }));
  await until(
    async () => (await cluster.gateway.handle(get("/readyz"))).status,
    (s) => s === 200,
    20_000,
  );
  await until(
    async () => (await status()).nodes.length,
    (n) => n === 3,
    10_000,
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([...workers.values(), ...schedulers].map((c) => c.stop()));
  await cluster?.close();
});

describe("scheduler on three nodes", () => {
  it("places a cold function on one node, then scales it out over all nodes under concurrent load", async () => {
    await cluster.hearth.deploy("spread", { code: SLOW_FN, concurrency: 2 });
    expect((await cluster.gateway.handle(get("/fn/spread"))).status).toBe(200);
    expect((await fnStatus("spread"))?.nodes).toHaveLength(1);
    // 16 in flight at 2 per isolate: 8 isolates wanted, spread over the three nodes.
    const scaledOut = until(
      () => fnStatus("spread"),
      (fn) => fn?.nodes.length === 3 && fn.actual >= 6,
      5_000,
    );
    const load = await steadyLoad("spread", 16, scaledOut);
    expect(load.failures).toEqual([]);
    expect(await scaledOut).toMatchObject({ nodes: ["n1", "n2", "n3"] });
  });

  it("a crashed node (SIGKILL of its whole process tree) fails no request sent 1 s after the crash", async () => {
    await cluster.hearth.deploy("survivor", { code: SLOW_FN, concurrency: 2 });
    let killedAtMs = 0;
    const started = performance.now();
    const load = await steadyLoad(
      "survivor",
      12,
      (async () => {
        await until(
          () => fnStatus("survivor"),
          (fn) => fn?.nodes.includes("n2") === true,
          5_000,
        );
        killedAtMs = performance.now() - started;
        workers.get("n2")?.signalTree("SIGKILL");
        // Lost within 3 s, and its pools placed on the other nodes.
        await until(
          async () => (await status()).nodes.find((n) => n.id === "n2")?.state,
          (state) => state === "lost",
          3_500,
        );
        await until(
          () => fnStatus("survivor"),
          (fn) => fn?.nodes.includes("n2") === false,
          3_000,
        );
        await sleep(1_000);
      })(),
    );
    expect(load.ok).toBeGreaterThan(0);
    const late = load.failures.filter((f) => f.sentAtMs > killedAtMs + 1_000);
    expect(late).toEqual([]);
    // Requests in flight on the dead node are answered with what happened, not a function timeout.
    for (const failure of load.failures) expect(failure.code).toBe("ERR_EXECUTOR_LOST");
    await workers.get("n2")?.stop();
    workers.set(
      "n2",
      spawnComponent("worker", { NATS_URL: cluster.nats.url, HEARTH_EXECUTORS: "1", HEARTH_WORKER_ID: "n2" }),
    );
    await until(
      async () => (await status()).nodes.find((n) => n.id === "n2")?.state,
      (s) => s === "ready",
      10_000,
    );
  });

  it("a paused node gets no new request 2.5 s after it stops reporting, and comes back when resumed", async () => {
    await cluster.hearth.deploy("paused", { code: SLOW_FN, concurrency: 2, timeoutMs: 10_000 });
    let pausedAtMs = 0;
    const started = performance.now();
    const load = await steadyLoad(
      "paused",
      12,
      (async () => {
        await until(
          () => fnStatus("paused"),
          (fn) => fn?.nodes.includes("n1") === true,
          5_000,
        );
        pausedAtMs = performance.now() - started;
        workers.get("n1")?.signalTree("SIGSTOP");
        await sleep(3_500);
      })(),
    );
    workers.get("n1")?.signalTree("SIGCONT");
    expect(load.ok).toBeGreaterThan(0);
    expect(load.failures.filter((f) => f.sentAtMs > pausedAtMs + 2_500)).toEqual([]);
    await until(
      async () => (await status()).nodes.find((n) => n.id === "n1")?.state,
      (s) => s === "ready",
      10_000,
    );
  });

  it("a killed leader is replaced within 5 s while warm requests keep being served", async () => {
    await cluster.hearth.deploy("through-failover", { code: SLOW_FN });
    expect((await cluster.gateway.handle(get("/fn/through-failover"))).status).toBe(200);
    const before = (await status()).leader;
    const index = schedulerIds.indexOf(before?.id ?? "");
    const leader = schedulers[index] as ComponentProcess;
    let failedOverMs = 0;
    const load = await steadyLoad(
      "through-failover",
      4,
      (async () => {
        const killedAt = performance.now();
        leader.signalTree("SIGKILL");
        const after = await until(
          async () => (await status().catch(() => null))?.leader,
          (l) => !!l && l.id !== before?.id,
          8_000,
        );
        failedOverMs = performance.now() - killedAt;
        expect(after?.epoch).toBeGreaterThan(before?.epoch ?? 0);
      })(),
    );
    expect(load.failures).toEqual([]);
    expect(failedOverMs).toBeLessThan(5_000);
    schedulers[index] = spawnComponent("scheduler", {
      NATS_URL: cluster.nats.url,
      HEARTH_SCHEDULER_ID: schedulerIds[index],
    });
  });

  it("a leader paused past its lease and resumed does not double or leak a pool", async () => {
    await cluster.hearth.deploy("fenced", { code: SLOW_FN, concurrency: 1 });
    const before = (await status()).leader;
    const leader = schedulers[schedulerIds.indexOf(before?.id ?? "")] as ComponentProcess;
    const load = steadyLoad(
      "fenced",
      3,
      (async () => {
        await until(
          () => fnStatus("fenced"),
          (fn) => (fn?.actual ?? 0) >= 3,
          5_000,
        );
        leader.signalTree("SIGSTOP");
        await until(
          async () => (await status().catch(() => null))?.leader?.id,
          (id) => !!id && id !== before?.id,
          8_000,
        );
        leader.signalTree("SIGCONT");
        await sleep(2_000);
      })(),
    );
    expect((await load).failures).toEqual([]);
    // One leader, and what the executors hold is what it assigned: no second copy from the old one.
    const after = await status();
    expect(after.leader?.id).not.toBe(before?.id);
    const fn = after.functions.find((f) => f.name === "fenced");
    const held = after.nodes.flatMap((n) => n.executors).filter((e) => e.functions.includes("fenced")).length;
    expect(held).toBe(fn?.nodes.length);
    expect(fn?.actual).toBeLessThanOrEqual(Math.max(fn?.desired ?? 0, 3));
  });

  it("drains a node under load without a failed request", async () => {
    await cluster.hearth.deploy("drained", { code: SLOW_FN, concurrency: 2 });
    const spreadOut = expect.poll(async () => (await fnStatus("drained"))?.nodes.length, { timeout: 5_000 }).toBe(3);
    const load = steadyLoad(
      "drained",
      12,
      (async () => {
        await spreadOut;
        const res = await cluster.gateway.handle({
          method: "POST",
          target: "/v1/nodes/n3/drain",
          headers: [["authorization", `Bearer ${TEST_TOKEN}`]],
          body: new Uint8Array(),
        });
        expect(res.status).toBe(202);
        await expect
          .poll(
            async () => {
              const node = (await status()).nodes.find((n) => n.id === "n3");
              return [node?.state, node?.executors.flatMap((e) => e.functions)];
            },
            { timeout: 10_000 },
          )
          .toEqual(["draining", []]);
        await sleep(500);
      })(),
    );
    const result = await load;
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(0);
    expect((await fnStatus("drained"))?.nodes).not.toContain("n3");
  });
});
