import { describe, expect, it } from "vitest";
import { functionCodeFor, isolateDepsFor, requestJson, text } from "../../test/support/isolate.ts";
import { DEFAULT_POOL_POLICY, FunctionPool } from "./function-pool.ts";

/** Counts invocations per isolate in a global: it restarts at 1 on a fresh isolate. */
const COUNTER = `export default { async fetch(request) {
  globalThis.n = (globalThis.n ?? 0) + 1;
  const path = new URL(request.url).pathname;
  if (path === "/wait") await new Promise((r) => setTimeout(r, 100));
  if (path === "/loop") while (true) {}
  return new Response(String(globalThis.n));
} };`;

async function poolFor(
  options: { concurrency?: number; policy?: Partial<typeof DEFAULT_POOL_POLICY>; now?: () => number } = {},
) {
  const fn = await functionCodeFor(COUNTER, { concurrency: options.concurrency, cpuMs: 30 });
  return new FunctionPool(fn, await isolateDepsFor(), { ...DEFAULT_POOL_POLICY, ...options.policy }, options.now);
}

async function call(pool: FunctionPool, path = "/") {
  const out = await pool.invoke("id", requestJson(`http://fn.test${path}`), null);
  return out.ok ? text(out.body) : out.code;
}

describe("FunctionPool", () => {
  it("adds isolates while every one is at the function's concurrency, up to the pool size", async () => {
    const pool = await poolFor({ concurrency: 1, policy: { maxIsolates: 3 } });
    await pool.warm();
    expect(pool.size).toBe(1);
    // Callers that find every isolate busy share one new isolate (one creation at a time)...
    const first = await Promise.all(Array.from({ length: 5 }, () => call(pool, "/wait")));
    expect(pool.size).toBe(2);
    // ...and the next wave, finding both busy again, adds the third, the most this pool may hold.
    const second = await Promise.all(Array.from({ length: 8 }, () => call(pool, "/wait")));
    expect(pool.size).toBe(3);
    expect([...first, ...second].every((r) => /^\d+$/.test(r))).toBe(true);
    pool.dispose();
  });

  it("recycles an isolate after its maximum number of invocations", async () => {
    const pool = await poolFor({ policy: { maxInvocationsPerIsolate: 3 } });
    const seen = [];
    for (let i = 0; i < 5; i++) seen.push(await call(pool));
    expect(seen).toEqual(["1", "2", "3", "1", "2"]);
    pool.dispose();
  });

  it("replaces an isolate a limit killed, on the next request", async () => {
    const pool = await poolFor();
    expect(await call(pool)).toBe("1");
    expect(await call(pool, "/loop")).toBe("ERR_FUNCTION_CPU_TIME");
    expect(await call(pool)).toBe("1");
    pool.dispose();
  });

  it("reports how long it has been idle", async () => {
    let now = 1_000;
    const pool = await poolFor({ now: () => now });
    await call(pool);
    now += 5_000;
    expect(pool.idleMs()).toBe(5_000);
    pool.dispose();
  });

  it("redeploys to fresh isolates, letting in-flight requests finish on the old one", async () => {
    const pool = await poolFor();
    await pool.warm();
    const inFlight = call(pool, "/wait");
    pool.replace(await functionCodeFor(`export default { fetch() { return new Response("v2"); } };`));
    expect(await call(pool)).toBe("v2");
    expect(await inFlight).toBe("1");
    pool.dispose();
  });

  it("close() lets requests in flight finish, refuses new ones with a retryable code, then frees the isolates", async () => {
    const pool = await poolFor({ concurrency: 4 });
    await pool.warm();
    const running = call(pool, "/wait");
    await new Promise((resolve) => setTimeout(resolve, 10));
    const closed = pool.close();
    expect(await call(pool)).toBe("ERR_NO_CAPACITY");
    expect(await running).toMatch(/^\d+$/);
    await closed;
    expect(pool.size).toBe(0);
  });

  it("setMaxIsolates lowers the ceiling and retires the isolates over it", async () => {
    const pool = await poolFor({ concurrency: 1, policy: { maxIsolates: 3 } });
    await pool.warm();
    await Promise.all(Array.from({ length: 6 }, () => call(pool, "/wait")));
    expect(pool.size).toBeGreaterThan(1);
    pool.setMaxIsolates(1);
    expect([pool.size, pool.maxIsolates]).toEqual([1, 1]);
    expect(await call(pool)).toMatch(/^\d+$/);
    pool.dispose();
  });
});
