import type { HostileCase } from "./containment.ts";

/**
 * Statements that, in a 16 MB isolate, make V8 give up for the whole process (a catastrophic
 * out-of-memory, isolated-vm README `onCatastrophicError`) instead of terminating the isolate.
 */
export const PROCESS_KILLER = `const o = {}; for (let i = 0; i < 1e6; i++) o["k" + i] = i;`;

/**
 * The hostile functions of the containment suite (issue 7), one per way to hurt a neighbour. Used by
 * test/containment.test.ts and `npm run containment`.
 */
export const HOSTILE_CASES: readonly HostileCase[] = [
  {
    name: "while(true){}",
    code: `export default { fetch() { while (true) {} } };`,
    expected: ["ERR_FUNCTION_CPU_TIME"],
  },
  {
    name: "an endless loop after an awaited timer",
    code: `export default { async fetch() { await new Promise((r) => setTimeout(r, 1)); while (true) {} } };`,
    expected: ["ERR_FUNCTION_CPU_TIME"],
  },
  {
    name: "console flood, short lines",
    code: `export default { fetch() { for (;;) console.log("x"); } };`,
    expected: ["ERR_FUNCTION_CPU_TIME"],
  },
  {
    name: "console flood, 16 KB lines",
    code: `const line = "y".repeat(16 * 1024); export default { fetch() { for (;;) console.log(line); } };`,
    expected: ["ERR_FUNCTION_CPU_TIME"],
  },
  {
    name: "timer flood",
    code: `export default { fetch() { for (;;) clearTimeout(setTimeout(() => {})); } };`,
    expected: ["ERR_FUNCTION_CPU_TIME"],
  },
  {
    // Uninterruptible while a parse runs: the executor may be retired (see below).
    name: "JSON.parse of 10 MB in a loop",
    code: `const big = JSON.stringify("z".repeat(10 * 1024 * 1024));
      export default { fetch() { for (;;) JSON.parse(big); } };`,
    expected: ["ERR_FUNCTION_CPU_TIME", "ERR_FUNCTION_MEMORY"],
    retiresItsExecutor: true,
  },
  {
    // Uninterruptible in V8: its thread runs on after the isolate is disposed, so the executor is
    // retired: its functions move to a fresh process first, then it exits (docs/security.md).
    name: "new Array(2e8).fill(0)",
    code: `export default { fetch() { new Array(2e8).fill(0); return new Response("filled"); } };`,
    expected: ["ERR_FUNCTION_CPU_TIME", "ERR_FUNCTION_MEMORY", "ERR_EXECUTOR_LOST"],
    limits: { memoryMb: 16 },
    retiresItsExecutor: true,
  },
  {
    name: "a heap bomb",
    code: `export default { fetch() { const a = []; for (;;) a.push({ x: Math.random(), y: [1, 2, 3] }); } };`,
    expected: ["ERR_FUNCTION_MEMORY", "ERR_FUNCTION_CPU_TIME"],
    // Near its limit V8 collects over and over (32 MB once took 2.4 s to fill): whichever limit comes first.
    limits: { memoryMb: 32, cpuMs: 250 },
    // isolated-vm lets an isolate near its limit overshoot before it terminates it: the executor may
    // pass its memory bound (or the isolate not stop in time) and be retired.
    retiresItsExecutor: true,
  },
  {
    name: "an ArrayBuffer bomb",
    code: `export default { fetch() { const keep = []; for (;;) keep.push(new ArrayBuffer(8 * 1024 * 1024)); } };`,
    expected: ["ERR_FUNCTION_THREW", "ERR_FUNCTION_MEMORY"],
    limits: { memoryMb: 32, cpuMs: 5_000 },
  },
  {
    name: "a WebAssembly.Memory bomb",
    code: `export default { fetch() { const keep = []; for (;;) keep.push(new WebAssembly.Memory({ initial: 4096 })); } };`,
    expected: ["ERR_FUNCTION_THREW"],
    limits: { memoryMb: 64 },
  },
  {
    // A module that declares a 256 MB memory (memory 4096): V8 would not count it.
    name: "a Wasm module declaring a large memory",
    code: `const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 4, 1, 0, 128, 32]);
      export default { fetch() { new WebAssembly.Instance(new WebAssembly.Module(bytes)); return new Response("allocated"); } };`,
    expected: ["ERR_FUNCTION_THREW"],
    limits: { memoryMb: 64 },
  },
  {
    name: "recursion overflow",
    code: `export default { fetch() { const f = (n) => f(n + 1) + 1; return f(0); } };`,
    expected: ["ERR_FUNCTION_THREW"],
  },
  {
    name: "thousands of timers",
    code: `export default { fetch() { for (let i = 0; i < 20000; i++) setTimeout(() => {}, 60000); return new Response("armed"); } };`,
    expected: ["ERR_FUNCTION_THREW"],
  },
  {
    // Streamed: the head (200) goes out first, and the gateway cuts the body at the stream limit
    // (20 MiB) with this code, which is what the caller's truncated body means.
    name: "a response body that never ends",
    code: `export default { fetch() { return new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(65536)); } })); } };`,
    expected: ["ERR_PAYLOAD_TOO_LARGE"],
    limits: { memoryMb: 64, cpuMs: 2_000, timeoutMs: 3_000 },
  },
  {
    // globalThis.require, not require: esbuild rewrites a bare `typeof require` to its own shim.
    name: "reaching for the host",
    code: `export default { fetch() {
      const found = [typeof process, typeof globalThis.require, Function("return typeof process")(), (0, eval)("typeof require")];
      // A leak answers 500 with plain text, which is not a Hearth error and fails the test.
      return found.every((t) => t === "undefined") ? new Response("contained") : new Response("LEAK " + found.join(), { status: 500 });
    } };`,
    expected: ["OK"],
  },
];

/**
 * Functions that answer at once and then keep working: their work must be charged and cut off.
 * `control` is the same function without the work after the response, to measure the spinner's
 * cost apart from what any cold call costs its executor.
 */
export const POST_RESPONSE_SPINNERS: readonly (HostileCase & { readonly control: string })[] = [
  {
    name: "a timer spinning after the response",
    code: `export default { fetch() {
      const spin = () => { const t = Date.now(); while (Date.now() - t < 2) {} setTimeout(spin, 0); };
      setTimeout(spin, 0);
      return new Response("answered");
    } };`,
    control: `export default { fetch() { setTimeout(() => {}, 0); return new Response("answered"); } };`,
    expected: ["OK"],
  },
  {
    name: "fetches spinning after the response",
    code: `export default { fetch(request, env, ctx) {
      ctx.waitUntil((async () => { for (;;) { try { await fetch("http://127.0.0.1:9/"); } catch {} } })());
      return new Response("answered");
    } };`,
    control: `export default { fetch(request, env, ctx) {
      ctx.waitUntil(fetch("http://127.0.0.1:9/").catch(() => {}));
      return new Response("answered");
    } };`,
    expected: ["OK"],
  },
];
