import { describe, expect, it } from "vitest";
import type { FunctionLoad, FunctionRecord, WorkerHeartbeat } from "../protocol/index.ts";
import { silentLogger } from "../protocol/index.ts";
import { ClusterView } from "./cluster-view.ts";
import { fixedKeepAlive } from "./keep-alive.ts";
import type { NodeClient } from "./node-client.ts";
import { ScalingLoop } from "./scaling-loop.ts";

/**
 * The whole pipeline (collect → decide → place → act) in virtual time: reports are fed by hand, and
 * commands go to a recording NodeClient (a seam we own) that answers at once or when told to.
 */
interface Command {
  readonly node: string;
  readonly fn: string;
  readonly executor: string | undefined;
  readonly isolates: number;
  readonly epoch: number;
}

function recordingNodes(): { client: NodeClient; commands: Command[]; hold: boolean; release(): void } {
  const waiting: Array<() => void> = [];
  const nodes = {
    commands: [] as Command[],
    hold: false,
    release() {
      for (const go of waiting.splice(0)) go();
    },
    client: {
      assign(node: string, fn: string, executor: string | undefined, isolates: number, epoch: number) {
        nodes.commands.push({ node, fn, executor, isolates, epoch });
        if (!nodes.hold) return Promise.resolve(executor ?? "");
        return new Promise<string>((resolve) => waiting.push(() => resolve(executor ?? "")));
      },
      drain: () => Promise.resolve(),
    } as unknown as NodeClient,
  };
  return nodes;
}

const record = (name: string, concurrency = 10): FunctionRecord => ({
  name,
  digest: `d-${name}`,
  bundleBytes: 1,
  version: "v1",
  versionId: 1,
  env: {},
  memoryMb: 128,
  timeoutMs: 1_000,
  cpuMs: 50,
  concurrency,
  maxBodyBytes: 1024,
  createdAt: "",
  updatedAt: "",
});

const beat = (id: string, functions: string[] = []): WorkerHeartbeat => ({
  id,
  pid: 1,
  state: "ready",
  memoryMb: 4096,
  functions,
  executors: [{ id: `${id}-e`, pid: 2, functions }],
  intervalMs: 500,
});

const load = (name: string, inFlight: number, maxIsolates: number, invocations: number): FunctionLoad => ({
  name,
  version: "v1",
  inFlight,
  isolates: maxIsolates,
  maxIsolates,
  concurrency: 10,
  invocations,
});

/** A three-node cluster whose executors report what the loop assigned, with `inFlight` spread evenly. */
function cluster(keepAliveMs = 60_000) {
  const view = new ClusterView();
  const nodes = recordingNodes();
  const loop = new ScalingLoop({
    view,
    nodes: nodes.client,
    keepAlive: fixedKeepAlive(keepAliveMs),
    log: silentLogger(),
  });
  let seq = 0;
  let invocations = 0;
  const ids = ["n1", "n2", "n3"];
  return {
    loop,
    nodes,
    view,
    /** Heartbeats and reports at `now`, then one tick. */
    async step(now: number, fn: string, inFlight: number, lost: string[] = []) {
      const assigned = loop.intended.get(fn);
      const replicas = [...(assigned ?? [])].filter(([, r]) => r.confirmedAt !== null);
      invocations += inFlight;
      for (const id of ids) {
        if (lost.includes(id)) continue;
        const mine = replicas.find(([executor]) => executor === `${id}-e`);
        view.observeHeartbeat(beat(id, mine ? [fn] : []), now);
        const share = replicas.length > 0 ? inFlight / replicas.length : 0;
        const functions = mine ? [load(fn, share, mine[1].isolates, invocations)] : [];
        view.observeReport({ node: id, executor: `${id}-e`, pid: 2, seq: ++seq, intervalMs: 500, functions }, now);
      }
      loop.tick(now, 7);
      await new Promise((resolve) => setImmediate(resolve)); // let command replies land
    },
    nodesOf: (fn: string) => [...(loop.intended.get(fn) ?? new Map()).values()].map((r) => r.node).sort(),
  };
}

describe("scaling loop (virtual time)", () => {
  it("places a cold function at once for held requests, with the leader's epoch", async () => {
    const c = cluster();
    c.loop.setRecord(record("fn"));
    c.loop.hold("fn", 1);
    await c.step(0, "fn", 0);
    expect(c.nodes.commands).toHaveLength(1);
    expect(c.nodes.commands[0]).toMatchObject({ fn: "fn", isolates: 1, epoch: 7 });
    expect(await c.loop.warmReplica("fn")).toMatchObject({ executor: expect.stringMatching(/^n\d-e$/) });
  });

  it("scales out over all three nodes under a burst, and not past what the load needs", async () => {
    const c = cluster();
    c.loop.setRecord(record("fn", 10));
    c.loop.hold("fn", 1);
    await c.step(0, "fn", 0);
    c.loop.hold("fn", -1);
    for (let t = 250; t <= 2_000; t += 250) await c.step(t, "fn", 90);
    expect(c.nodesOf("fn")).toEqual(["n1", "n2", "n3"]);
    // 90 in flight at 10 per isolate: 9 wanted.
    expect(c.loop.intended.isolatesOf("fn")).toBe(9);
    expect(c.loop.decision("fn")).toMatchObject({ desired: 9, panic: true });
  });

  it("re-places the pools of a lost node on the others", async () => {
    const c = cluster();
    c.loop.setRecord(record("fn", 10));
    c.loop.hold("fn", 1);
    await c.step(0, "fn", 0);
    c.loop.hold("fn", -1);
    for (let t = 250; t <= 2_000; t += 250) await c.step(t, "fn", 30);
    expect(c.nodesOf("fn")).toEqual(["n1", "n2", "n3"]);
    for (let t = 2_250; t <= 6_000; t += 250) await c.step(t, "fn", 30, ["n2"]);
    expect(c.nodesOf("fn")).toEqual(["n1", "n3"]);
    expect(c.loop.intended.isolatesOf("fn")).toBe(3);
  });

  it("unloads old replicas only after the new ones answered (make before break)", async () => {
    const c = cluster();
    c.loop.setRecord(record("fn", 10));
    c.loop.hold("fn", 1);
    await c.step(0, "fn", 0);
    c.loop.hold("fn", -1);
    const first = c.nodesOf("fn")[0] as string;
    c.nodes.hold = true;
    // The node holding it starts draining: its replica must move, but not before the new one is up.
    c.view.observeHeartbeat({ ...beat(first, ["fn"]), state: "draining" }, 250);
    c.loop.tick(250, 7);
    const loads = c.nodes.commands.filter((cmd) => cmd.isolates > 0 && cmd.node !== first);
    expect(loads).toHaveLength(1);
    expect(c.nodes.commands.some((cmd) => cmd.isolates === 0)).toBe(false);
    c.nodes.release();
    await new Promise((resolve) => setImmediate(resolve));
    c.nodes.hold = false;
    c.view.observeHeartbeat({ ...beat(first, ["fn"]), state: "draining" }, 500);
    c.loop.tick(500, 7);
    expect(c.nodes.commands.filter((cmd) => cmd.isolates === 0).map((cmd) => cmd.node)).toEqual([first]);
  });

  it("scales an idle function to zero once its keep-alive runs out, and not before", async () => {
    const c = cluster(10_000);
    c.loop.setRecord(record("fn"));
    c.loop.hold("fn", 1);
    await c.step(0, "fn", 0);
    c.loop.hold("fn", -1);
    await c.step(250, "fn", 5);
    for (let t = 500; t <= 10_000; t += 250) await c.step(t, "fn", 0);
    expect(c.loop.intended.isolatesOf("fn")).toBe(1);
    for (let t = 10_250; t <= 11_000; t += 250) await c.step(t, "fn", 0);
    expect(c.loop.intended.isolatesOf("fn")).toBe(0);
    expect(c.nodes.commands.at(-1)).toMatchObject({ fn: "fn", isolates: 0 });
  });

  it("a new leader adopts what executors report and does not scale it down within the stable window", async () => {
    const c = cluster();
    c.loop.setRecord(record("fn"));
    for (const id of ["n1", "n2", "n3"]) {
      c.view.observeHeartbeat(beat(id, ["fn"]), 0);
      c.view.observeReport(
        { node: id, executor: `${id}-e`, pid: 2, seq: 1, intervalMs: 500, functions: [load("fn", 0, 2, 0)] },
        0,
      );
    }
    c.loop.resetForNewLeader();
    c.loop.tick(0, 8);
    expect(c.loop.intended.isolatesOf("fn")).toBe(6);
    for (let t = 250; t <= 9_000; t += 250) await c.step(t, "fn", 0);
    expect(c.loop.intended.isolatesOf("fn")).toBe(6);
    expect(c.nodes.commands.filter((cmd) => cmd.isolates < 2)).toEqual([]);
  });

  it("a cold request is not learnt as a short idle period before the executor reports it", async () => {
    const events: string[] = [];
    const inner = fixedKeepAlive(60_000)();
    const recording = {
      observeArrival: (now: number) => {
        events.push(`arrival@${now}`);
        inner.observeArrival(now);
      },
      observeIdle: (now: number) => {
        events.push(`idle@${now}`);
        inner.observeIdle(now);
      },
      warmWindows: (since: number) => inner.warmWindows(since),
      shouldBeWarm: (now: number, since: number) => inner.shouldBeWarm(now, since),
      predictedNextArrivalMs: (now: number, since: number) => inner.predictedNextArrivalMs(now, since),
    };
    const view = new ClusterView();
    const nodes = recordingNodes();
    const loop = new ScalingLoop({ view, nodes: nodes.client, keepAlive: () => recording, log: silentLogger() });
    loop.setRecord(record("fn"));
    view.observeHeartbeat(beat("n1"), 0);
    view.observeReport({ node: "n1", executor: "n1-e", pid: 2, seq: 1, intervalMs: 500, functions: [] }, 0);
    loop.hold("fn", 1);
    loop.tick(0, 1);
    await new Promise((resolve) => setImmediate(resolve));
    loop.hold("fn", -1);
    // The released request ran and ended before the executor's next report: a tick sees nothing.
    loop.tick(250, 1);
    view.observeReport(
      { node: "n1", executor: "n1-e", pid: 2, seq: 2, intervalMs: 500, functions: [load("fn", 0, 1, 1)] },
      400,
    );
    loop.tick(500, 1);
    loop.tick(1_500, 1);
    expect(events).toEqual(["arrival@0", "arrival@500", "idle@500"]);
  });

  it("a cold request while a pool is being unloaded gets a pool that stays, not the one on its way out", async () => {
    const c = cluster(1_000);
    c.loop.setRecord(record("fn"));
    c.loop.hold("fn", 1);
    await c.step(0, "fn", 0);
    c.loop.hold("fn", -1);
    await c.step(250, "fn", 1);
    c.nodes.hold = true;
    for (let t = 500; t <= 2_500; t += 250) await c.step(t, "fn", 0);
    const unload = c.nodes.commands.find((cmd) => cmd.isolates === 0);
    expect(unload).toBeDefined();
    c.loop.hold("fn", 1);
    c.loop.tick(2_750, 7);
    const replica = c.loop.warmReplica("fn");
    const reload = c.nodes.commands.at(-1);
    expect(reload).toMatchObject({ fn: "fn", isolates: 1 });
    c.nodes.release();
    expect(await replica).toMatchObject({ executor: reload?.executor });
    // The unload's late answer does not undo the reload.
    await new Promise((resolve) => setImmediate(resolve));
    expect(c.loop.intended.isolatesOf("fn")).toBe(1);
  });
});
