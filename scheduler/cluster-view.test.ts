import { describe, expect, it } from "vitest";
import type { WorkerHeartbeat } from "../protocol/index.ts";
import { ClusterView } from "./cluster-view.ts";

const beat = (id: string, state: "ready" | "draining" = "ready"): WorkerHeartbeat => ({
  id,
  pid: 1,
  state,
  memoryMb: 1024,
  functions: ["fn"],
  executors: [{ id: `${id}-e`, pid: 2, functions: ["fn"] }],
  intervalMs: 500,
});
const report = (node: string, seq: number, inFlight: number) => ({
  node,
  executor: `${node}-e`,
  pid: 2,
  seq,
  intervalMs: 500,
  functions: [{ name: "fn", version: "v", inFlight, isolates: 1, maxIsolates: 1, concurrency: 32, invocations: seq }],
});

describe("ClusterView (virtual time)", () => {
  it("a node silent for 2.5 s is lost, and its executors leave placement", () => {
    const view = new ClusterView();
    view.observeHeartbeat(beat("a"), 0);
    view.observeReport(report("a", 1, 3), 0);
    expect(view.nodes(2_500).map((n) => n.state)).toEqual(["ready"]);
    expect(view.nodes(2_501).map((n) => n.state)).toEqual(["lost"]);
    expect(view.nodeOfExecutor("a-e", 2_501)).toBeUndefined();
    expect(view.functions(2_501).get("fn")).toBeUndefined();
  });

  it("an executor whose reports stop is out of placement although its node still beats", () => {
    const view = new ClusterView();
    view.observeReport(report("a", 1, 3), 0);
    view.observeHeartbeat(beat("a"), 0);
    view.observeHeartbeat(beat("a"), 2_000);
    expect(view.nodeOfExecutor("a-e", 2_000)).toBe("a");
    expect(view.nodeOfExecutor("a-e", 2_001)).toBeUndefined();
  });

  it("ignores reports from nodes that never sent a heartbeat, and reordered old reports", () => {
    const view = new ClusterView();
    view.observeReport(report("ghost", 1, 3), 0);
    expect(view.functions(0).get("fn")).toBeUndefined();
    view.observeHeartbeat(beat("a"), 0);
    view.observeReport(report("a", 5, 7), 0);
    view.observeReport(report("a", 4, 1), 0);
    expect(view.functions(0).get("fn")?.inFlight).toBe(7);
  });

  it("counts gateways' outstanding requests when they exceed what executors run (requests in transit)", () => {
    const view = new ClusterView();
    view.observeHeartbeat(beat("a"), 0);
    view.observeReport(report("a", 1, 150), 0);
    view.observeGatewayLoad(
      { gateway: "g1", seq: 1, intervalMs: 500, functions: [{ name: "fn", outstanding: 120 }] },
      0,
    );
    view.observeGatewayLoad(
      { gateway: "g2", seq: 1, intervalMs: 500, functions: [{ name: "fn", outstanding: 80 }] },
      0,
    );
    expect(view.functions(0).get("fn")?.inFlight).toBe(200);
    // A gateway that stops reporting no longer counts.
    view.observeReport(report("a", 2, 150), 2_500);
    view.observeHeartbeat(beat("a"), 2_500);
    expect(view.functions(2_500).get("fn")?.inFlight).toBe(150);
  });

  it("an idle executor (empty reports) stays live and placeable", () => {
    const view = new ClusterView();
    view.observeHeartbeat(beat("a"), 0);
    for (let t = 0; t <= 1_500; t += 500) {
      view.observeReport({ node: "a", executor: "a-e", pid: 2, seq: t + 1, intervalMs: 500, functions: [] }, t);
      expect(view.nodeOfExecutor("a-e", t)).toBe("a");
    }
    expect(view.nodeViews(1_500, () => undefined)[0]?.executors).toEqual([{ id: "a-e" }]);
  });
});
