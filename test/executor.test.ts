import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection, nuid } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareBundle } from "../control/index.ts";
import {
  BUCKETS,
  decodeReply,
  encodeInvocation,
  type FunctionLoad,
  type FunctionRecord,
  FunctionStore,
  LIMITS,
  parseLoadReport,
  type Runnable,
  SUBJECTS,
} from "../protocol/index.ts";
import { Executor, loadBootstrap } from "../runtime/index.ts";
import { type NatsServer, startNatsServer } from "../sdk/index.ts";
import { storeFunction } from "./support/store-function.ts";

/** An executor in this process, driven over real NATS exactly as the gateway drives it. */
let nats: NatsServer;
let nc: NatsConnection;
let store: FunctionStore;
let executor: Executor;

/** Executor tests' functions: a short timeout and a CPU budget of 20 ms unless `limits` says otherwise. */
function deploy(name: string, source: string, limits: Partial<Runnable> = {}): Promise<FunctionRecord> {
  return storeFunction(store, name, source, { cpuMs: 20, ...limits });
}

async function invoke(record: FunctionRecord) {
  const head = { method: "GET", url: "http://x.test/", headers: [] as Array<[string, string]> };
  const msg = await nc.request(SUBJECTS.invoke(executor.id, record.name), new Uint8Array(), {
    headers: encodeInvocation(nuid.next(), record.version, head),
    timeout: 5_000,
  });
  return decodeReply(msg);
}

beforeAll(async () => {
  nats = await startNatsServer({});
  nc = await connect({ servers: nats.url });
  store = await FunctionStore.open(nc);
  executor = new Executor({
    nc,
    id: "test-exec",
    node: "test",
    bundles: store,
    // Stands in for the worker, which answers from its watch of the store.
    fetchRecord: (name) => store.get(name),
    bootstrap: await loadBootstrap(),
    stemCells: 1,
  });
  await executor.start();
});

afterAll(async () => {
  await executor?.close();
  await nc?.close();
  await nats?.stop();
});

describe("Executor over NATS", () => {
  it("serves a loaded function and counts every limit a function hits", async () => {
    const looper = await deploy("looper", `export default { fetch() { while (true) {} } };`);
    await executor.load(looper);
    expect(await invoke(looper)).toMatchObject({ ok: false, code: "ERR_FUNCTION_CPU_TIME" });
    expect(await invoke(looper)).toMatchObject({ ok: false, code: "ERR_FUNCTION_CPU_TIME" });
    expect(executor.limitCounts).toMatchObject({ "looper ERR_FUNCTION_CPU_TIME": 2 });
  });

  it("catches up to a newer version named by the request before serving it", async () => {
    const v1 = await deploy("versioned", `export default { fetch() { return new Response("v1"); } };`);
    await executor.load(v1);
    const first = await invoke(v1);
    expect(first.ok && new TextDecoder().decode(first.body)).toBe("v1");
    const v2 = await deploy("versioned", `export default { fetch() { return new Response("v2"); } };`);
    const second = await invoke(v2);
    expect(second.ok && new TextDecoder().decode(second.body)).toBe("v2");
  });

  it("swaps an idle pool to the version the worker forwards, and unloads a function it says was removed", async () => {
    const v1 = await deploy("doomed", `export default { fetch() { return new Response("v1"); } };`);
    await executor.load(v1);
    const v2 = await deploy("doomed", `export default { fetch() { return new Response("v2"); } };`);
    await executor.update(v2);
    // The request names v1 (a stale gateway): the pool already holds v2, and v1 is not brought back.
    const res = await invoke(v1);
    expect(res.ok && new TextDecoder().decode(res.body)).toBe("v2");
    expect(executor.functions).toContain("doomed");
    await executor.remove("doomed");
    expect(executor.functions).not.toContain("doomed");
  });

  it("refuses a bundle swapped in the object store under its digest, runs none of it, and caches nothing", async () => {
    const victim = await deploy("victim", `export default { fetch() { return new Response("genuine"); } };`);
    const genuine = await store.getBundle(victim.digest);
    // An attacker with write access to the object store replaces the bundle, keeping its name.
    const bundles = await new Objm(nc).open(BUCKETS.bundles);
    const evil = await prepareBundle(`export default { fetch() { return new Response("evil"); } };`, "evil.js");
    await bundles.putBlob({ name: victim.digest }, new TextEncoder().encode(evil));

    const refusedBefore = executor.refusedBundles;
    await expect(executor.load(victim)).rejects.toMatchObject({
      code: "ERR_FUNCTION_INVALID",
      message: expect.stringMatching(/integrity check.*not run/),
    });
    expect(executor.refusedBundles).toBe(refusedBefore + 1);
    expect(executor.functions).not.toContain("victim");
    await expect(invoke(victim)).rejects.toThrow(); // no responders: nothing serves it

    // Nothing was cached: with the genuine bytes back, the next load reads, verifies and serves them.
    await bundles.putBlob({ name: victim.digest }, genuine as Uint8Array);
    await executor.load(victim);
    const res = await invoke(victim);
    expect(res.ok && new TextDecoder().decode(res.body)).toBe("genuine");
    expect(executor.refusedBundles).toBe(refusedBefore + 1);
  });

  it("reports each function's load and answers a resize from the scheduler in its next report", async () => {
    const reports = nc.subscribe(SUBJECTS.load);
    const slow = await deploy(
      "slow",
      `export default { async fetch() { await new Promise((r) => setTimeout(r, 300)); return new Response("ok"); } };`,
    );
    await executor.load(slow, 2);
    const calls = Promise.all([invoke(slow), invoke(slow), invoke(slow)]);
    let busy: FunctionLoad | undefined;
    for await (const msg of reports) {
      const report = parseLoadReport(msg.data);
      busy = report?.functions.find((f) => f.name === "slow" && f.inFlight === 3);
      if (busy) break;
    }
    reports.unsubscribe();
    expect(busy).toMatchObject({ version: slow.version, maxIsolates: 2, concurrency: LIMITS.defaultConcurrency });
    expect((await calls).every((r) => r.ok)).toBe(true);
  });
});
