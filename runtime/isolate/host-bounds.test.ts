import { describe, expect, it } from "vitest";
import { isolatesPerTest, requestJson, text } from "../../test/support/isolate.ts";
import { CONSOLE_LIMITS } from "./bootstrap/console.ts";
import type { IsolateEvents } from "./function-isolate.ts";

/**
 * Calls from an isolate to the host are bounded: a flood of console lines or timers costs the
 * function its own CPU (and ends with its CPU limit), never the host's memory or event loop. Work
 * after a response is charged and cut off. Real isolates; no mocks.
 */
const { start } = isolatesPerTest();

/** Collects what IsolateEvents reports. */
function recordEvents() {
  const cuts: Array<{ code: string; message: string }> = [];
  const stuck: string[] = [];
  const events: IsolateEvents = {
    backgroundCut: (_fn, code, message) => cuts.push({ code, message }),
    stuck: (fn) => stuck.push(fn),
  };
  return { events, cuts, stuck };
}

/** Milliseconds the host event loop was late over `ms`, checked every 10 ms: how starved it was. */
async function eventLoopLag(ms: number): Promise<number> {
  let worst = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 10));
    worst = Math.max(worst, performance.now() - t0 - 10);
  }
  return worst;
}

describe("console output is capped per invocation", () => {
  it("keeps the first lines, then says how many were dropped", async () => {
    const { isolate, console } = await start(
      `export default { fetch() { for (let i = 0; i < 1500; i++) console.log("line " + i); return new Response("ok"); } };`,
      { cpuMs: 2_000 },
    );
    const out = await isolate.invoke("inv-cap", requestJson(), null);
    expect(out.ok).toBe(true);
    const mine = console.filter((l) => l.invocationId === "inv-cap");
    expect(mine).toHaveLength(CONSOLE_LIMITS.linesPerInvocation + 1);
    expect(mine[0]?.message).toBe("line 0");
    expect(mine.at(-1)?.message).toMatch(/^\[hearth\] 500 console line\(s\) \(\d+ characters\) dropped/);
    expect(mine.at(-1)?.level).toBe("warn");
  });

  it("cuts a long line inside the isolate and counts characters against the cap", async () => {
    const { isolate, console } = await start(
      `export default { fetch() { const big = "x".repeat(1e6); for (let i = 0; i < 40; i++) console.log(big); return new Response("ok"); } };`,
      { cpuMs: 2_000 },
    );
    const out = await isolate.invoke("inv-long", requestJson(), null);
    expect(out.ok).toBe(true);
    const mine = console.filter((l) => l.invocationId === "inv-long");
    const kept = mine.filter((l) => l.message.startsWith("x"));
    for (const line of kept) expect(line.message.length).toBeLessThan(CONSOLE_LIMITS.charsPerLine + 40);
    expect(kept.reduce((n, l) => n + l.message.length, 0)).toBeLessThanOrEqual(CONSOLE_LIMITS.charsPerInvocation);
    expect(mine.at(-1)?.message).toMatch(/dropped/);
  });

  it("an endless console.log loop ends with the CPU limit, sends at most the cap, and leaves the host's event loop free", async () => {
    const { isolate, console } = await start(`export default { fetch() { for (;;) console.log("x"); } };`, {
      cpuMs: 50,
    });
    const [out, lag] = await Promise.all([isolate.invoke("inv-flood", requestJson(), null), eventLoopLag(300)]);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.code).toBe("ERR_FUNCTION_CPU_TIME");
    expect(console.length).toBeLessThanOrEqual(CONSOLE_LIMITS.linesPerInvocation);
    expect(lag).toBeLessThan(100);
  });
});

describe("timers live in the isolate", () => {
  it("an endless set/clear loop makes no host calls and ends with the CPU limit", async () => {
    const { isolate } = await start(`export default { fetch() { for (;;) clearTimeout(setTimeout(() => {})); } };`, {
      cpuMs: 50,
    });
    const [out, lag] = await Promise.all([isolate.invoke("inv-timers", requestJson(), null), eventLoopLag(300)]);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.code).toBe("ERR_FUNCTION_CPU_TIME");
    expect(lag).toBeLessThan(100);
  });

  it("fires due timers in order of due time, then creation, with intervals and clears", async () => {
    const { isolate } = await start(`export default { async fetch() {
      const seen = [];
      setTimeout(() => seen.push("b"), 20);
      setTimeout(() => seen.push("a"), 5);
      const gone = setTimeout(() => seen.push("never"), 10);
      setTimeout(() => seen.push("c"), 20);
      clearTimeout(gone);
      let ticks = 0;
      const every = setInterval(() => { if (++ticks === 3) clearInterval(every); }, 10);
      await new Promise((r) => setTimeout(r, 80));
      return new Response(JSON.stringify({ seen, ticks }));
    } };`);
    const out = await isolate.invoke("inv-order", requestJson(), null);
    expect(out.ok).toBe(true);
    if (out.ok) expect(JSON.parse(text(out.body))).toEqual({ seen: ["a", "b", "c"], ticks: 3 });
  });
});

describe("work after the response", () => {
  it("is charged to the function and cut off at its CPU budget", async () => {
    const { events, cuts } = recordEvents();
    const { isolate } = await start(
      `export default { fetch() {
        setInterval(() => { const t = Date.now(); while (Date.now() - t < 5) {} }, 10);
        return new Response("answered");
      } };`,
      { cpuMs: 50, events },
    );
    const out = await isolate.invoke("inv-spin", requestJson(), null);
    expect(out.ok).toBe(true);
    await expect.poll(() => isolate.disposed, { timeout: 3_000 }).toBe(true);
    expect(cuts).toEqual([{ code: "ERR_FUNCTION_CPU_TIME", message: expect.stringMatching(/after the response/) }]);
  });

  it("a pending timer keeps it open until the post-response bound, then the isolate is retired", async () => {
    const { events, cuts } = recordEvents();
    const { isolate } = await start(
      `export default { fetch() { setTimeout(() => {}, 60_000); return new Response("answered"); } };`,
      { events, postResponseMs: 200 },
    );
    expect((await isolate.invoke("inv-wait", requestJson(), null)).ok).toBe(true);
    expect(isolate.disposed).toBe(false);
    await expect.poll(() => isolate.disposed, { timeout: 3_000 }).toBe(true);
    expect(cuts.map((c) => c.code)).toEqual(["ERR_FUNCTION_TIMEOUT"]);
  });

  it("concurrent invocations leave at most one watch behind, not one each", async () => {
    const { isolate } = await start(
      `setInterval(() => {}, 1_000);
      export default { async fetch() { await new Promise((r) => setTimeout(r, 5)); return new Response("ok"); } };`,
    );
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => isolate.invoke(`inv-${i}`, requestJson(), null)),
    );
    expect(outcomes.every((o) => o.ok)).toBe(true);
    // The module's interval is still pending: one watch lingers on it, for the last invocation out.
    expect(isolate.watchedInvocations).toBe(1);
  });

  it("work that finishes in time is left alone", async () => {
    const { events, cuts } = recordEvents();
    const { isolate, console } = await start(
      `export default { fetch(request, env, ctx) {
        ctx.waitUntil(new Promise((r) => setTimeout(() => { console.log("late work done"); r(); }, 30)));
        return new Response("answered");
      } };`,
      { events, postResponseMs: 2_000 },
    );
    expect((await isolate.invoke("inv-late", requestJson(), null)).ok).toBe(true);
    await expect.poll(() => console.some((l) => l.message === "late work done"), { timeout: 2_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(isolate.disposed).toBe(false);
    expect(cuts).toEqual([]);
    expect((await isolate.invoke("inv-after", requestJson(), null)).ok).toBe(true);
  });
});
