import { describe, expect, it } from "vitest";
import type { WorkerHeartbeat } from "../protocol/index.ts";
import { NodeRegistry } from "./node-registry.ts";
import { rankNodesFor } from "./placement.ts";

const beat = (id: string, functions: string[] = [], intervalMs = 1_000): WorkerHeartbeat => ({
  id,
  pid: 1,
  state: "ready",
  memoryMb: 1024,
  functions,
  executors: [{ id: `${id}-1`, pid: 1, functions }],
  intervalMs,
});

describe("rankNodesFor", () => {
  it("prefers a node already holding the function, then the least loaded", () => {
    const nodes = [beat("a", ["x", "y"]), beat("b", ["z", "fn", "w"]), beat("c", [])];
    expect(rankNodesFor("fn", nodes).map((n) => n.id)).toEqual(["b", "c", "a"]);
    expect(rankNodesFor("new", nodes).map((n) => n.id)).toEqual(["c", "a", "b"]);
  });
});

describe("NodeRegistry (virtual time)", () => {
  it("forgets a node after three missed heartbeats", () => {
    const registry = new NodeRegistry();
    registry.observe(beat("a"), 0);
    expect(registry.live(3_000).map((n) => n.id)).toEqual(["a"]);
    expect(registry.live(3_001)).toEqual([]);
  });

  it("records a placement before the node's next heartbeat says so", () => {
    const registry = new NodeRegistry();
    registry.observe(beat("a"), 0);
    registry.markLoaded("a", "fn");
    expect(registry.live(10)[0]?.functions).toEqual(["fn"]);
  });

  it("wakes a waiter on the next heartbeat", async () => {
    const registry = new NodeRegistry();
    const waiting = registry.nextBeat(60_000);
    registry.observe(beat("a"), 0);
    await waiting;
    expect(registry.live(0)).toHaveLength(1);
  });
});
