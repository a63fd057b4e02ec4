import { FunctionIsolate } from "../runtime/index.ts";
import { functionCodeFor, isolateDepsFor, requestJson } from "../test/support/isolate.ts";

/**
 * crypto.subtle as function code sees it: µs per operation inside one isolate (HMAC, PBKDF2 in the
 * isolate; ECDSA, Ed25519, AES-GCM on the host through the bridge), and the process CPU each took,
 * which includes the host's import of the key for every operation. `node bench/crypto-subtle.ts`.
 */
const SOURCE = `
const s = crypto.subtle;
const data = new TextEncoder().encode("x".repeat(200));
async function time(n, op) {
  for (let i = 0; i < Math.min(20, n); i++) await op();
  const start = Date.now();
  for (let i = 0; i < n; i++) await op();
  return ((Date.now() - start) * 1000) / n;
}
const cases = {
  async hs256(n) {
    const key = await s.importKey("raw", new Uint8Array(32), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    return time(n, async () => s.verify("HMAC", key, await s.sign("HMAC", key, data), data));
  },
  async es256(n) {
    const p = await s.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const alg = { name: "ECDSA", hash: "SHA-256" };
    return time(n, async () => s.verify(alg, p.publicKey, await s.sign(alg, p.privateKey, data), data));
  },
  async es256Parallel(n) {
    const p = await s.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const alg = { name: "ECDSA", hash: "SHA-256" };
    const sig = await s.sign(alg, p.privateKey, data);
    for (let i = 0; i < Math.min(20, n); i++) await s.verify(alg, p.publicKey, sig, data);
    const start = Date.now();
    await Promise.all(Array.from({ length: n }, () => s.verify(alg, p.publicKey, sig, data)));
    return ((Date.now() - start) * 1000) / n;
  },
  async ed25519(n) {
    const p = await s.generateKey("Ed25519", false, ["sign", "verify"]);
    return time(n, async () => s.verify("Ed25519", p.publicKey, await s.sign("Ed25519", p.privateKey, data), data));
  },
  async aesGcm1MiB(n) {
    const key = await s.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt"]);
    const big = new Uint8Array(1 << 20);
    return time(n, () => s.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, big));
  },
  async pbkdf2x100k(n) {
    const key = await s.importKey("raw", new Uint8Array(16), "PBKDF2", false, ["deriveBits"]);
    return time(n, () => s.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations: 100000 }, key, 256));
  },
};
export default {
  async fetch(request) {
    const url = new URL(request.url);
    return Response.json(await cases[url.pathname.slice(1)](Number(url.searchParams.get("n"))));
  },
};`;

const RUNS: Array<[string, number]> = [
  ["hs256", 5_000],
  ["es256", 1_000],
  ["es256Parallel", 1_000],
  ["ed25519", 1_000],
  ["aesGcm1MiB", 50],
  ["pbkdf2x100k", 5],
];

const fn = await FunctionIsolate.create(
  await functionCodeFor(SOURCE, { timeoutMs: 120_000, cpuMs: 120_000, memoryMb: 128 }),
  await isolateDepsFor({}),
);
for (const [name, n] of RUNS) {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const out = await fn.invoke(name, requestJson(`http://fn.test/${name}?n=${n}`), null);
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  if (!out.ok) throw new Error(`${name}: ${out.code} ${out.message}`);
  const perOp = JSON.parse(new TextDecoder().decode(out.body)) as number;
  // Warm-up runs count too: min(20, n) of them before the timed n (see time() in SOURCE).
  const cpuPerOp = (cpu.user + cpu.system) / (n + Math.min(20, n));
  console.log(
    `${name.padEnd(14)} ${perOp.toFixed(1).padStart(9)} µs/op in the isolate   process CPU ${cpuPerOp.toFixed(1).padStart(9)} µs/op   (${n} ops, ${wallMs.toFixed(0)} ms)`,
  );
}
fn.dispose();
