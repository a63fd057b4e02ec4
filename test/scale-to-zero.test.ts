import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bodyText, get, type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";

let cluster: InProcessCluster;
const holders = (fn: string) =>
  (cluster.scheduler?.registry.live(Date.now()) ?? []).filter((node) => node.functions.includes(fn)).length;

beforeAll(async () => {
  cluster = await startInProcessCluster({ worker: { heartbeatMs: 100, executorEnv: { HEARTH_IDLE_MS: "300" } } });
});

afterAll(async () => {
  await cluster?.close();
});

describe("scale to zero", () => {
  it("unloads an idle function from its node, and the next request brings it back", async () => {
    await cluster.hearth.deploy("sleepy", { code: `export default { fetch() { return new Response("awake"); } };` });
    expect((await cluster.gateway.handle(get("/fn/sleepy"))).status).toBe(200);
    await expect.poll(() => holders("sleepy"), { timeout: 5_000 }).toBe(1);
    // No traffic for longer than HEARTH_IDLE_MS: the executor frees the pool and the node stops reporting it.
    await expect.poll(() => holders("sleepy"), { timeout: 5_000 }).toBe(0);
    const again = await cluster.gateway.handle(get("/fn/sleepy"));
    expect([again.status, bodyText(again)]).toEqual([200, "awake"]);
  });
});
