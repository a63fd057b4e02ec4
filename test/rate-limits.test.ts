import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway, type HttpResponse } from "../gateway/index.ts";
import {
  connectNats,
  type GatewayLoadReport,
  type NamespaceRecord,
  NamespaceStore,
  parseGatewayLoadReport,
  SUBJECTS,
} from "../protocol/index.ts";
import { HearthApiError } from "../sdk/index.ts";
import { bodyText, get, type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

const HELLO = `export default { fetch() { return new Response("hi"); } };`;
const SLOW = `export default { async fetch() { await new Promise((r) => setTimeout(r, 2000)); return new Response("done"); } };`;

let cluster: InProcessCluster;
/** Two more gateways, started after the namespaces' quotas were written. */
const gateways: Gateway[] = [];
const connections: NatsConnection[] = [];

function namespace(name: string, quotas: NamespaceRecord["quotas"]): NamespaceRecord {
  const at = new Date().toISOString();
  return { name, quotas, createdAt: at, updatedAt: at };
}

beforeAll(async () => {
  cluster = await startInProcessCluster();
  const namespaces = await NamespaceStore.open(cluster.nc);
  await namespaces.put(namespace("metered", { invocationsPerMinute: 20 }));
  await namespaces.put(namespace("narrow", { concurrentInvocations: 4 }));
  for (const id of ["gw-a", "gw-b"]) {
    const nc = await connectNats(cluster.nats.url, id);
    connections.push(nc);
    const gateway = new Gateway({ nc, token: TEST_TOKEN, port: 0 });
    await gateway.start();
    gateways.push(gateway);
  }
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  for (const nc of connections) await nc.close();
  await cluster?.close();
});

/** `total` GETs of `/fn/<fn>`, alternating between the two gateways, `concurrency` at a time on each. */
async function burst(fn: string, total: number, concurrency: number): Promise<HttpResponse[]> {
  const results: HttpResponse[] = [];
  let next = 0;
  const lane = async (gateway: Gateway) => {
    while (next < total) {
      next++;
      results.push(await gateway.handle(get(`/fn/${fn}`)));
    }
  };
  const lanes: Promise<void>[] = [];
  for (let c = 0; c < concurrency; c++) lanes.push(lane(gateways[0] as Gateway), lane(gateways[1] as Gateway));
  await Promise.all(lanes);
  return results;
}

/** Resolves at the start of the next window of `periodMs` when less than `neededMs` of the current one is left. */
async function windowWithRoom(periodMs: number, neededMs: number): Promise<void> {
  const left = periodMs - (Date.now() % periodMs);
  if (left < neededMs) await new Promise((resolve) => setTimeout(resolve, left + 20));
}

function codeOf(res: HttpResponse): string {
  return res.status === 200 ? "OK" : JSON.parse(bodyText(res)).error.code;
}

function retryAfterOf(res: HttpResponse): number {
  return Number(res.headers.find(([name]) => name === "retry-after")?.[1]);
}

describe("rate limits and namespace quotas over two gateways", () => {
  it("admits N ± 10 % of a burst split across two gateways, refuses the rest with 429 and Retry-After, then admits again", async () => {
    await cluster.hearth.deploy("limited", { code: HELLO, rateLimit: { requests: 100, periodSeconds: 10 } });
    // Warm on both gateways, then start at a fresh window: no cold start inside the measured one.
    for (const gateway of gateways) expect((await gateway.handle(get("/fn/limited"))).status).toBe(200);
    await windowWithRoom(10_000, 10_001);
    const window = Math.floor(Date.now() / 10_000);
    const results = await burst("limited", 250, 8);
    // The burst must fit in one window for the count to mean anything (ample for 250 warm requests).
    expect(Math.floor(Date.now() / 10_000)).toBe(window);
    const admitted = results.filter((r) => r.status === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(90);
    expect(admitted).toBeLessThanOrEqual(110);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused.length).toBe(250 - admitted);
    for (const res of refused) {
      expect(res.status).toBe(429);
      expect(codeOf(res)).toBe("ERR_RATE_LIMITED");
      expect(retryAfterOf(res)).toBeGreaterThanOrEqual(1);
      expect(retryAfterOf(res)).toBeLessThanOrEqual(10);
    }
    // A full window's refusal says when it ends.
    const late = await (gateways[0] as Gateway).handle(get("/fn/limited"));
    const secondsLeft = Math.ceil((10_000 - (Date.now() % 10_000)) / 1000);
    expect(late.status).toBe(429);
    expect(retryAfterOf(late)).toBeGreaterThanOrEqual(secondsLeft);
    expect(retryAfterOf(late)).toBeLessThanOrEqual(secondsLeft + 1);
    // The next window admits again.
    await expect
      .poll(async () => (await (gateways[1] as Gateway).handle(get("/fn/limited"))).status, {
        timeout: 15_000,
        interval: 500,
      })
      .toBe(200);
  });

  it("leaves a function without a limit alone", async () => {
    await cluster.hearth.deploy("unlimited", { code: HELLO });
    const results = await burst("unlimited", 200, 8);
    expect(results.map(codeOf).filter((c) => c !== "OK")).toEqual([]);
  });

  it("holds a namespace to its invocations per minute, sync and async alike", async () => {
    await cluster.hearth.deploy("metered-a", { code: HELLO, namespace: "metered" });
    await cluster.hearth.deploy("metered-b", { code: HELLO, namespace: "metered" });
    await windowWithRoom(60_000, 15_000);
    const window = Math.floor(Date.now() / 60_000);
    const results = [...(await burst("metered-a", 20, 4)), ...(await burst("metered-b", 20, 4))];
    const asyncAccept = await (gateways[0] as Gateway).handle({
      ...get("/fn/metered-b"),
      headers: [
        ["host", "test"],
        ["prefer", "respond-async"],
      ],
    });
    expect(Math.floor(Date.now() / 60_000)).toBe(window);
    const admitted = results.filter((r) => r.status === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(18);
    expect(admitted).toBeLessThanOrEqual(22);
    for (const res of results.filter((r) => r.status !== 200)) {
      expect(codeOf(res)).toBe("ERR_RATE_LIMITED");
      expect(retryAfterOf(res)).toBeGreaterThanOrEqual(1);
    }
    expect(codeOf(asyncAccept)).toBe("ERR_RATE_LIMITED");
    // Another namespace is not touched.
    expect((await (gateways[1] as Gateway).handle(get("/fn/unlimited"))).status).toBe(200);
  });

  it("holds a namespace to its concurrent invocations, counting what the other gateway has in flight", async () => {
    await cluster.hearth.deploy("slow", { code: SLOW, namespace: "narrow" });
    const [a, b] = gateways as [Gateway, Gateway];
    // Gateway b learns a's in-flight from a's load reports: wait for two of them (b has the first by then).
    const reports: GatewayLoadReport[] = [];
    const sub = cluster.nc.subscribe(SUBJECTS.gatewayLoad, {
      callback: (_err, msg) => {
        const report = parseGatewayLoadReport(msg.data);
        if (report?.functions.some((f) => f.name === "slow" && f.outstanding === 4)) reports.push(report);
      },
    });
    const first = Promise.all(Array.from({ length: 6 }, () => a.handle(get("/fn/slow"))));
    await expect.poll(() => reports.length, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(2);
    sub.unsubscribe();
    const onB = await Promise.all(Array.from({ length: 3 }, () => b.handle(get("/fn/slow"))));
    expect(onB.map(codeOf)).toEqual(["ERR_RATE_LIMITED", "ERR_RATE_LIMITED", "ERR_RATE_LIMITED"]);
    const onA = await first;
    expect(onA.map(codeOf).sort()).toEqual(["ERR_RATE_LIMITED", "ERR_RATE_LIMITED", "OK", "OK", "OK", "OK"]);
    // Once they are done, b admits again.
    await expect.poll(async () => (await b.handle(get("/fn/slow"))).status, { timeout: 10_000 }).toBe(200);
  });

  it.each([
    [{ requests: 0, periodSeconds: 10 }, /rateLimit.requests must be an integer from 1 to 1000000/],
    [{ requests: 1.5, periodSeconds: 10 }, /rateLimit.requests/],
    [{ requests: 2_000_000, periodSeconds: 10 }, /rateLimit.requests/],
    [{ requests: 10, periodSeconds: 30 }, /rateLimit.periodSeconds must be one of 1, 10, 60, got 30/],
    [{ requests: 10 }, /rateLimit.periodSeconds/],
    [{ requests: 10, periodSeconds: 10, burst: 5 }, /may only hold requests and periodSeconds, got burst/],
    ["100/min", /rateLimit must be an object/],
  ])("refuses rateLimit %j at deploy with a clear error", async (rateLimit, message) => {
    const deploying = cluster.hearth.deploy("bad-limit", {
      code: HELLO,
      rateLimit: rateLimit as unknown as { requests: number; periodSeconds: number },
    });
    await expect(deploying).rejects.toBeInstanceOf(HearthApiError);
    await expect(deploying).rejects.toMatchObject({ status: 400, code: "ERR_BAD_REQUEST", message });
  });

  it("removes a limit with rateLimit null, and keeps it when a redeploy leaves it out", async () => {
    await cluster.hearth.deploy("changing", { code: HELLO, rateLimit: { requests: 5, periodSeconds: 60 } });
    await cluster.hearth.deploy("changing", { code: HELLO, memoryMb: 64 });
    expect((await cluster.hearth.get("changing")).rateLimit).toEqual({ requests: 5, periodSeconds: 60 });
    await cluster.hearth.deploy("changing", { code: HELLO, rateLimit: null });
    expect((await cluster.hearth.get("changing")).rateLimit).toBeUndefined();
  });
});
