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

beforeAll(async () => {
  // Two executors: the healthy function is placed first and has one to itself until hostile
  // functions arrive; hostile code that kills its executor process then takes down only the other.
  cluster = await startInProcessCluster({ worker: { executors: 2 } });
  gateway = cluster.gateway;
  await cluster.hearth.deploy("healthy", { code: `export default { fetch() { return new Response("fine"); } };` });
  expect((await gateway.handle(get("/fn/healthy"))).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

/** Calls the healthy function continuously (4 at a time) until `stop` resolves; returns the failures. */
async function steadyLoad(target: Gateway, stop: Promise<unknown>): Promise<{ requests: number; failures: string[] }> {
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  let requests = 0;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (!done) {
        const res = await target.handle(get("/fn/healthy"));
        requests++;
        if (res.status !== 200) failures.push(outcomeOf(res));
      }
    }),
  );
  return { requests, failures };
}

/** [case, code, acceptable outcomes, limits and how many calls (default 2: the replaced isolate must fail as clearly)] */
type HostileCase = [
  string,
  string,
  string[],
  { memoryMb?: number; cpuMs?: number; timeoutMs?: number; calls?: number }?,
];

const HOSTILE: HostileCase[] = [
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
    // Uninterruptible in V8: it runs on (~5 s, ~1 GB) on an isolated-vm pool thread after the CPU
    // watchdog has answered the caller and disposed the isolate; measured: the process survives.
    "new Array(2e8).fill(0)",
    `export default { fetch() { new Array(2e8).fill(0); return new Response("filled"); } };`,
    ["ERR_FUNCTION_CPU_TIME", "ERR_FUNCTION_MEMORY"],
    { memoryMb: 16, calls: 1 },
  ],
  [
    "a WebAssembly.Memory bomb",
    `export default { fetch() { const keep = []; for (;;) keep.push(new WebAssembly.Memory({ initial: 4096 })); } };`,
    ["ERR_FUNCTION_THREW"],
    { memoryMb: 64 },
  ],
  [
    // globalThis.require, not require: esbuild rewrites a bare `typeof require` to its own shim.
    "reaching for the host",
    `export default { fetch() {
      const found = [typeof process, typeof globalThis.require, Function("return typeof process")(), (0, eval)("typeof require")];
      // A leak answers 500 with plain text, which is not a Hearth error and fails the test.
      return found.every((t) => t === "undefined") ? new Response("contained") : new Response("LEAK " + found.join(), { status: 500 });
    } };`,
    ["OK"],
  ],
];

describe("hostile functions next to a healthy one under steady load", () => {
  it.each(HOSTILE)(
    "%s: a clear error for the caller, no failed request for the neighbour",
    async (_, code, expected, options = {}) => {
      const { calls = 2, ...limits } = options;
      const name = `hostile-${Math.random().toString(36).slice(2, 8)}`;
      await cluster.hearth.deploy(name, { code, ...limits });
      const hostile = (async () => {
        const codes: string[] = [];
        for (let i = 0; i < calls; i++) codes.push(outcomeOf(await gateway.handle(get(`/fn/${name}`))));
        return codes;
      })();
      const [codes, load] = await Promise.all([hostile, steadyLoad(gateway, hostile)]);
      for (const c of codes) expect(expected).toContain(c);
      expect(load.failures).toEqual([]);
      expect(load.requests).toBeGreaterThan(0);
    },
  );
});

/**
 * Out-of-memory cases that V8 cannot survive (research/isolated-vm.md §1): the executor process must
 * die (`onCatastrophicError` → abort). Each runs in a fresh cluster whose worker has two executors,
 * the healthy function placed first, so the killer is placed on the other executor.
 */
describe.each([["a 1M-key object in a 16 MB isolate", `const o = {}; for (let i = 0; i < 1e6; i++) o["k" + i] = i;`]])(
  "%s kills only its own executor",
  (_, body) => {
    let own: InProcessCluster;
    beforeAll(async () => {
      own = await startInProcessCluster({ worker: { executors: 2 } });
      await own.hearth.deploy("healthy", { code: `export default { fetch() { return new Response("fine"); } };` });
      expect((await own.gateway.handle(get("/fn/healthy"))).status).toBe(200);
    }, 60_000);
    afterAll(async () => {
      await own?.close();
    });

    it("the neighbour on the other executor sees no failed request, and the supervisor restarts the dead one", async () => {
      await own.hearth.deploy("process-killer", {
        code: `export default { fetch() { ${body} return new Response("survived"); } };`,
        memoryMb: 16,
        cpuMs: 10_000,
        timeoutMs: 3_000,
      });
      const worker = own.worker as Worker;
      const pidsBefore = worker.executorPids;
      const killer = own.gateway.handle(get("/fn/process-killer")).then(outcomeOf);
      const [code, load] = await Promise.all([killer, steadyLoad(own.gateway, killer)]);
      // The caller's request dies with the executor: its worker says so, and the gateway answers at once.
      expect(["ERR_FUNCTION_MEMORY", "ERR_EXECUTOR_LOST"]).toContain(code);
      expect(load.failures).toEqual([]);
      expect(load.requests).toBeGreaterThan(0);
      await expect
        .poll(() => worker.executorPids.filter((pid) => !pidsBefore.includes(pid)).length, { timeout: 10_000 })
        .toBe(1);
      expect((await own.gateway.handle(get("/fn/healthy"))).status).toBe(200);
    });
  },
);
