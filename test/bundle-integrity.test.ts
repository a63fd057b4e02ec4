import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Objm } from "@nats-io/obj";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareBundle } from "../control/index.ts";
import { BUCKETS, SUBJECTS } from "../protocol/index.ts";
import { bodyText, get, type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";

/**
 * Issue 7, item 5: a bundle swapped in the object store under a function's digest (what an attacker
 * with write access to NATS could do) is refused by the executor before it compiles, and the call
 * fails with a clear error. Gateway, scheduler and worker in this process, executors real processes.
 */
let cluster: InProcessCluster;
let probe: Server;
/** Paths the functions under test reached: the observable sign that their code ran. */
const hits: string[] = [];

/** A function that, when it runs, tells the probe server it did. */
const reporter = (port: number, mark: string) =>
  `export default { async fetch() { await fetch("http://127.0.0.1:${port}/${mark}"); return new Response("${mark}"); } };`;

beforeAll(async () => {
  probe = createServer((req, res) => {
    hits.push(req.url ?? "");
    res.end("ok");
  });
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  // No worker yet: nothing can prefetch the genuine bundle before the attacker swaps it.
  cluster = await startInProcessCluster({ worker: false });
});

afterAll(async () => {
  await cluster?.close();
  probe?.close();
});

describe("bundles are verified before they run", () => {
  it("a bundle swapped under a function's digest is refused, never run, and the call fails with a clear error", async () => {
    const port = (probe.address() as AddressInfo).port;
    await cluster.hearth.deploy("victim", { code: `export default { fetch() { return new Response("genuine"); } };` });
    await cluster.hearth.deploy("control", { code: reporter(port, "control-ran") });
    const victim = await cluster.hearth.get("victim");

    // The attacker: a plain NATS client writing the object store, keeping the bundle's name.
    const bundles = await new Objm(cluster.nc).open(BUCKETS.bundles);
    const evil = await prepareBundle(reporter(port, "evil-ran"), "evil.js");
    await bundles.putBlob({ name: victim.digest }, new TextEncoder().encode(evil));

    await cluster.startWorker({ id: "w-integrity", executorEnv: { HEARTH_EGRESS_ALLOW: "127.0.0.1" } });
    // The probe works: code that does run reaches it.
    const control = await cluster.gateway.handle(get("/fn/control"));
    expect([control.status, bodyText(control)]).toEqual([200, "control-ran"]);
    expect(hits).toContain("/control-ran");

    const res = await cluster.gateway.handle(get("/fn/victim"));
    // The caller learns that the function cannot load (the gateway decides how much of why to show).
    expect(res.status).toBe(500);
    expect(JSON.parse(bodyText(res)).error.code).toBe("ERR_FUNCTION_INVALID");
    expect(bodyText(res)).not.toMatch(/evil|genuine/);
    expect(hits).not.toContain("/evil-ran");

    // The reason, as the scheduler hears it from the worker (and logs it): the integrity check.
    const { leader } = await cluster.hearth.status();
    const reply = await cluster.nc.request(
      SUBJECTS.workerCommand("w-integrity"),
      JSON.stringify({ type: "assign", epoch: leader?.epoch ?? 0, fn: "victim", isolates: 1 }),
      { timeout: 5_000 },
    );
    expect(reply.json()).toMatchObject({
      ok: false,
      code: "ERR_FUNCTION_INVALID",
      message: expect.stringMatching(/integrity check.*not run/),
    });
    expect(hits).not.toContain("/evil-ran");
  });
});
