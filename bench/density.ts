/**
 * Density: warm idle isolates (full web API from the snapshot, a hello function, invoked once) per
 * GiB of process RSS. Run by bench/run.ts in its own process (`--no-node-snapshot --expose-gc`);
 * prints one JSON line. `node bench/density.ts [count] [lazy-parts]`.
 */
import { FunctionIsolate } from "../runtime/index.ts";
import { functionCodeFor, isolateDepsFor, requestJson } from "../test/support/isolate.ts";

const COUNT = Number(process.argv[2] ?? 500);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
/**
 * `lazy-parts` as the second argument: a function that also renders an object in console.log, parses
 * FormData and calls crypto.subtle, so its isolates hold the runtime's lazy parts (lazy.ts).
 */
const USES_LAZY_PARTS = process.argv[3] === "lazy-parts";
const HANDLER = USES_LAZY_PARTS
  ? `async fetch() {
      console.log({ parts: ["inspect"] });
      await new Response(new URLSearchParams("part=formData")).formData();
      await crypto.subtle.digest("SHA-256", new Uint8Array(1));
      return new Response("hello world");
    }`
  : `fetch() { return new Response("hello world"); }`;
const fn = await functionCodeFor(`export default { ${HANDLER} };`, { memoryMb: 128 });
const deps = await isolateDepsFor();

// One isolate first, so one-time costs (bootstrap snapshot, code caches) are not counted per isolate.
const first = await FunctionIsolate.create(fn, deps);
await first.invoke("warm", requestJson(), null);
gc();
await new Promise((r) => setTimeout(r, 200));
const before = process.memoryUsage().rss;
const isolates = [];
for (let i = 0; i < COUNT; i++) {
  const isolate = await FunctionIsolate.create({ ...fn, digest: fn.digest }, deps);
  await isolate.invoke(`i${i}`, requestJson(), null);
  isolates.push(isolate);
}
gc();
await new Promise((r) => setTimeout(r, 500));
const after = process.memoryUsage().rss;
const perIsolateMiB = (after - before) / COUNT / (1024 * 1024);
console.log(
  JSON.stringify({
    isolates: COUNT,
    rssGrowthMiB: Math.round((after - before) / 1048576),
    perIsolateMiB,
    per4GiB: Math.floor(4096 / perIsolateMiB),
  }),
);
for (const isolate of [first, ...isolates]) isolate.dispose();
process.exit(0);
