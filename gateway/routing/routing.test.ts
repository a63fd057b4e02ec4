import { describe, expect, it } from "vitest";
import type { FunctionLoad, LoadReport } from "../../protocol/index.ts";
import { seededRandom } from "../../test/support/seeded-random.ts";
import { type Endpoint, loadOf } from "./endpoint.ts";
import { DEFAULT_POLICY, POLICY_NAMES, parsePolicyName, policyFactory } from "./policies.ts";
import { Router } from "./router.ts";

const endpoint = (executor: string, capacity = 32): Endpoint => ({
  executor,
  node: "n",
  subject: `hearth.x.${executor}.fn`,
  local: 0,
  others: 0,
  capacity,
  seenAt: 0,
});

describe.each(POLICY_NAMES)("routing policy %s (conformance)", (name) => {
  it("always picks one of the candidates", () => {
    const policy = policyFactory(name, seededRandom(1))();
    const candidates = [endpoint("a"), endpoint("b"), endpoint("c")];
    for (let i = 0; i < 1_000; i++) expect(candidates).toContain(policy.pick(candidates));
  });

  it("picks the only candidate when there is one", () => {
    const only = endpoint("a");
    expect(policyFactory(name, seededRandom(2))().pick([only])).toBe(only);
  });

  it("uses every equally loaded candidate", () => {
    const policy = policyFactory(name, seededRandom(3))();
    const candidates = [endpoint("a"), endpoint("b"), endpoint("c")];
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const picked = policy.pick(candidates);
      seen.add(picked.executor);
      // Load-aware policies must see the load they create, as the invoker does (local++).
      picked.local++;
    }
    expect([...seen].sort()).toEqual(["a", "b", "c"]);
  });

  it("keeps requests in flight balanced when each request is counted until it ends", () => {
    // 3 endpoints, 96 concurrent requests: a closed loop, as a load generator with 96 connections.
    const policy = policyFactory(name, seededRandom(4))();
    const candidates = [endpoint("a"), endpoint("b"), endpoint("c")];
    const random = seededRandom(5);
    const inFlight: Endpoint[] = [];
    let worst = 0;
    for (let step = 0; step < 5_000; step++) {
      while (inFlight.length < 96) {
        const picked = policy.pick(candidates);
        picked.local++;
        inFlight.push(picked);
      }
      const done = inFlight.splice(Math.floor(random() * inFlight.length), 1)[0] as Endpoint;
      done.local--;
      const loads = candidates.map((c) => c.local);
      worst = Math.max(worst, Math.max(...loads) / (loads.reduce((a, b) => a + b, 0) / loads.length));
    }
    // Only load-aware policies can promise balance; the others are measured by the bench.
    if (name === "least-loaded" || name === "p2c") expect(worst).toBeLessThanOrEqual(1.25);
    else expect(worst).toBeGreaterThanOrEqual(1);
  });
});

describe("routing policies that look at load", () => {
  it("least-loaded picks the endpoint with the lowest load per capacity", () => {
    const policy = policyFactory("least-loaded")();
    const busy = { ...endpoint("a"), local: 10 };
    const big = { ...endpoint("b", 64), local: 12 };
    const small = { ...endpoint("c", 8), local: 4 };
    expect(policy.pick([busy, big, small])).toBe(big);
    expect(loadOf(big)).toBeLessThan(loadOf(busy));
  });

  it("p2c never picks the more loaded of the two it looked at", () => {
    const policy = policyFactory("p2c", seededRandom(6))();
    const idle = endpoint("a");
    const busy = { ...endpoint("b"), others: 100 };
    for (let i = 0; i < 100; i++) expect(policy.pick([idle, busy])).toBe(idle);
  });

  it("weighted sends in proportion to capacity", () => {
    const policy = policyFactory("weighted", seededRandom(7))();
    const big = endpoint("a", 96);
    const small = endpoint("b", 32);
    let toBig = 0;
    for (let i = 0; i < 4_000; i++) if (policy.pick([big, small]) === big) toBig++;
    expect(toBig / 4_000).toBeCloseTo(0.75, 1);
  });
});

const load = (name: string, inFlight = 0, isolates = 1): FunctionLoad => ({
  name,
  version: "v",
  inFlight,
  isolates,
  maxIsolates: 4,
  concurrency: 32,
  invocations: 0,
});
const report = (executor: string, seq: number, functions: FunctionLoad[]): LoadReport => ({
  node: "n1",
  executor,
  pid: 1,
  seq,
  intervalMs: 500,
  functions,
});

describe("Router (virtual time)", () => {
  it("routes to executors that report the function, and nowhere else", () => {
    const router = new Router({ now: () => 0 });
    router.observe(report("e1", 1, [load("a")]));
    router.observe(report("e2", 1, [load("b")]));
    expect(router.pick("a")?.executor).toBe("e1");
    expect(router.pick("b")?.executor).toBe("e2");
    expect(router.pick("c")).toBeNull();
  });

  it("stops routing to an executor that has not reported for the stale window", () => {
    let now = 0;
    const router = new Router({ now: () => now, staleMs: 2_000 });
    router.observe(report("e1", 1, [load("a")]));
    router.observe(report("e2", 1, [load("a")]));
    now = 1_500;
    router.observe(report("e2", 2, [load("a")]));
    now = 2_001;
    for (let i = 0; i < 20; i++) expect(router.pick("a")?.executor).toBe("e2");
    now = 3_501;
    expect(router.pick("a")).toBeNull();
  });

  it("forgets a function an executor no longer reports, and ignores an older report", () => {
    const router = new Router({ now: () => 0 });
    router.observe(report("e1", 2, [load("a"), load("b")]));
    router.observe(report("e1", 3, [load("b")]));
    router.observe(report("e1", 1, [load("a")]));
    expect(router.pick("a")).toBeNull();
    expect(router.pick("b")?.executor).toBe("e1");
  });

  it("drops an endpoint, and a lost executor, at once", () => {
    const router = new Router({ now: () => 0 });
    router.observe(report("e1", 1, [load("a"), load("b")]));
    router.observe(report("e2", 1, [load("a")]));
    router.drop("a", router.pick("a") as Endpoint);
    expect(router.pick("a")).not.toBeNull();
    router.lose("e1");
    router.lose("e2");
    expect(router.pick("a")).toBeNull();
    expect(router.pick("b")).toBeNull();
  });

  it("counts other gateways' load from reports and its own from its requests", () => {
    const router = new Router({ now: () => 0 });
    router.observe(report("e1", 1, [load("a", 0, 2)]));
    const e1 = router.pick("a") as Endpoint;
    e1.local = 3;
    router.observe(report("e1", 2, [load("a", 10, 2)]));
    expect(e1).toMatchObject({ local: 3, others: 7, capacity: 64 });
  });

  it("a pool the scheduler names does not bring back an executor that went quiet", () => {
    let now = 0;
    const router = new Router({ now: () => now, staleMs: 2_000 });
    router.observe(report("e1", 1, [load("a")]));
    now = 2_500;
    router.add("a", "e1", "n1");
    expect(router.pick("a")).toBeNull();
  });

  it("routes to a pool the scheduler just placed before its executor reports it", () => {
    const router = new Router({ now: () => 0 });
    router.add("a", "e9", "n9");
    expect(router.pick("a")).toMatchObject({ executor: "e9", node: "n9", subject: "hearth.x.e9.a" });
  });
});

describe("parsePolicyName", () => {
  it("accepts every policy, defaults when unset, and names the choices for anything else", () => {
    for (const name of POLICY_NAMES) expect(parsePolicyName(name)).toBe(name);
    expect(parsePolicyName(undefined)).toBe(DEFAULT_POLICY);
    expect(() => parsePolicyName("fastest")).toThrow(/one of random, round-robin, weighted, least-loaded, p2c/);
  });
});
