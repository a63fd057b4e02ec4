import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixedKeepAlive } from "../scheduler/index.ts";
import { bodyText, get, type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";

let cluster: InProcessCluster;
/** Executors holding `fn`, as the scheduler's status shows them. */
const holders = (fn: string) =>
  (cluster.scheduler?.status().nodes ?? []).flatMap((n) => n.executors).filter((e) => e.functions.includes(fn)).length;

beforeAll(async () => {
  cluster = await startInProcessCluster({
    scheduler: { keepAlive: fixedKeepAlive(300) },
    worker: { heartbeatMs: 100 },
  });
});

afterAll(async () => {
  await cluster?.close();
});

describe("scale to zero", () => {
  it("unloads an idle function once its keep-alive runs out, and the next request brings it back", async () => {
    await cluster.hearth.deploy("sleepy", { code: `export default { fetch() { return new Response("awake"); } };` });
    expect((await cluster.gateway.handle(get("/fn/sleepy"))).status).toBe(200);
    await expect.poll(() => holders("sleepy"), { timeout: 5_000 }).toBe(1);
    // No traffic for longer than the keep-alive: the scheduler unloads the pool and the node stops reporting it.
    await expect.poll(() => holders("sleepy"), { timeout: 5_000 }).toBe(0);
    const again = await cluster.gateway.handle(get("/fn/sleepy"));
    expect([again.status, bodyText(again)]).toEqual([200, "awake"]);
  });
});
