import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../gateway/index.ts";
import type { Worker } from "../runtime/index.ts";
import { get, type InProcessCluster, outcomeOf, startInProcessCluster } from "./support/in-process.ts";

/**
 * Hostile functions run on the same worker node as a healthy function under steady load. Each hostile
 * call must end in a clear error and the healthy function must see no failed request. (Its latency
 * is compared with its baseline by `npm run bench`, not by timed assertions here.)
 */
let cluster: InProcessCluster;
let gateway: Gateway;
let worker: Worker;

beforeAll(async () => {
  // Two executors: the healthy function is placed first and has one to itself until hostile
  // functions arrive; hostile code that kills its executor process then takes down only the other.
  cluster = await startInProcessCluster({ worker: { executors: 2 } });
  gateway = cluster.gateway;
  worker = cluster.worker as Worker;
  await cluster.hearth.deploy("healthy", { code: `export default { fetch() { return new Response("fine"); } };` });
  expect((await gateway.handle(get("/fn/healthy"))).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

/** Calls the healthy function continuously (4 at a time) until `stop` resolves; returns the failures. */
async function steadyLoad(stop: Promise<unknown>): Promise<{ requests: number; failures: string[] }> {
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  let requests = 0;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (!done) {
        const res = await gateway.handle(get("/fn/healthy"));
        requests++;
        if (res.status !== 200) failures.push(outcomeOf(res));
      }
    }),
  );
  return { requests, failures };
}

const HOSTILE: Array<[string, string, string[], { memoryMb?: number; cpuMs?: number; timeoutMs?: number }?]> = [
  ["while(true){}", `export default { fetch() { while (true) {} } };`, ["ERR_FUNCTION_CPU_TIME"]],
  [
    "an endless loop after an awaited timer",
    `export default { async fetch() { await new Promise((r) => setTimeout(r, 1)); while (true) {} } };`,
    ["ERR_FUNCTION_CPU_TIME"],
  ],
  [
    "a heap bomb",
    `export default { fetch() { const a = []; for (;;) a.push({ x: Math.random(), y: [1, 2, 3] }); } };`,
    ["ERR_FUNCTION_MEMORY", "ERR_FUNCTION_CPU_TIME"],
    { memoryMb: 32, cpuMs: 5_000 },
  ],
  [
    "an ArrayBuffer bomb",
    `export default { fetch() { const keep = []; for (;;) keep.push(new ArrayBuffer(8 * 1024 * 1024)); } };`,
    ["ERR_FUNCTION_THREW", "ERR_FUNCTION_MEMORY"],
    { memoryMb: 32, cpuMs: 5_000 },
  ],
  [
    "recursion overflow",
    `export default { fetch() { const f = (n) => f(n + 1) + 1; return f(0); } };`,
    ["ERR_FUNCTION_THREW"],
  ],
  [
    "thousands of timers",
    `export default { fetch() { for (let i = 0; i < 20000; i++) setTimeout(() => {}, 60000); return new Response("armed"); } };`,
    ["ERR_FUNCTION_THREW"],
  ],
  [
    "a response body that never ends",
    `export default { fetch() { return new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(65536)); } })); } };`,
    ["ERR_PAYLOAD_TOO_LARGE"],
    { memoryMb: 64, cpuMs: 2_000, timeoutMs: 3_000 },
  ],
  [
    "reaching for the host",
    `export default { fetch() {
      const found = [typeof process, typeof require, Function("return typeof process")(), (0, eval)("typeof require")];
      return new Response(found.every((t) => t === "undefined") ? "contained" : "LEAK " + found.join());
    } };`,
    ["OK"],
  ],
];

describe("hostile functions next to a healthy one under steady load", () => {
  it.each(HOSTILE)(
    "%s: a clear error for the caller, no failed request for the neighbour",
    async (_, code, expected, limits) => {
      const name = `hostile-${Math.random().toString(36).slice(2, 8)}`;
      await cluster.hearth.deploy(name, { code, ...limits });
      const hostile = (async () => {
        const codes: string[] = [];
        for (let i = 0; i < 2; i++) codes.push(outcomeOf(await gateway.handle(get(`/fn/${name}`))));
        return codes;
      })();
      const [codes, load] = await Promise.all([hostile, steadyLoad(hostile)]);
      for (const c of codes) expect(expected).toContain(c);
      expect(load.failures).toEqual([]);
      expect(load.requests).toBeGreaterThan(0);
    },
  );

  it("an out-of-memory that kills its executor process kills only that executor's invocations", async () => {
    // research/isolated-vm.md §1: a 1M-key object in a 16 MB isolate is a catastrophic V8 OOM.
    await cluster.hearth.deploy("process-killer", {
      code: `export default { fetch() { const o = {}; for (let i = 0; i < 1e6; i++) o["k" + i] = i; return new Response("survived"); } };`,
      memoryMb: 16,
      cpuMs: 10_000,
      timeoutMs: 3_000,
    });
    const pidsBefore = worker.executorPids;
    const killer = gateway.handle(get("/fn/process-killer")).then(outcomeOf);
    const [code, load] = await Promise.all([killer, steadyLoad(killer)]);
    expect(["ERR_FUNCTION_MEMORY", "ERR_FUNCTION_TIMEOUT"]).toContain(code);
    expect(load.failures).toEqual([]);
    // The supervisor replaced the dead executor and the node keeps serving.
    await expect
      .poll(() => worker.executorPids.filter((pid) => !pidsBefore.includes(pid)).length, { timeout: 10_000 })
      .toBe(1);
    expect((await gateway.handle(get("/fn/healthy"))).status).toBe(200);
  });
});
