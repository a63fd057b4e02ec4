import { describe, expect, it } from "vitest";
import { seededRandom as random } from "../test/support/seeded-random.ts";
import { type Assignment, type Demand, type NodeView, type Placement, type PlaceOptions, place } from "./placer.ts";

type PlaceFn = (
  demands: readonly Demand[],
  current: Assignment,
  nodes: readonly NodeView[],
  options?: Partial<PlaceOptions>,
) => Placement;

interface NodeSpec {
  readonly executors?: number;
  readonly memoryMb?: number;
  readonly bundles?: readonly string[];
  readonly state?: NodeView["state"];
}

const node = (id: string, spec: NodeSpec = {}): NodeView => ({
  id,
  state: spec.state ?? "ready",
  memoryMb: spec.memoryMb ?? 1_024,
  executors: Array.from({ length: spec.executors ?? 1 }, (_, i) => ({ id: `${id}${i}` })),
  bundles: new Set(spec.bundles ?? []),
});

const demand = (name: string, desired: number, extra: Partial<Demand> = {}): Demand => ({
  name,
  desired,
  memoryMb: 16,
  digest: `sha256:${name}`,
  ...extra,
});

const assignment = (plain: Record<string, Record<string, number>>): Assignment =>
  new Map(Object.entries(plain).map(([fn, replicas]) => [fn, new Map(Object.entries(replicas))]));

const plainOf = (a: Assignment): Record<string, Record<string, number>> =>
  Object.fromEntries([...a].map(([fn, replicas]) => [fn, Object.fromEntries(replicas)]));

/** The rules every placement strategy must keep; one suite, run against each implementation. */
function runPlacementSuite(name: string, placeWith: PlaceFn): void {
  describe(`placement conformance: ${name}`, () => {
    const empty: Assignment = new Map();

    it("spreads 3 instances over 3 nodes", () => {
      const nodes = [node("a", { executors: 2 }), node("b", { executors: 2 }), node("c", { executors: 2 })];
      const result = placeWith([demand("fn", 3)], empty, nodes);
      expect(plainOf(result.assignment)).toEqual({ fn: { a0: 1, b0: 1, c0: 1 } });
      expect(result.unplaced.size).toBe(0);
    });

    it("grows within a node across executors before growing replicas", () => {
      const result = placeWith([demand("fn", 5)], empty, [node("a", { executors: 3 })]);
      expect(plainOf(result.assignment)).toEqual({ fn: { a0: 2, a1: 2, a2: 1 } });
    });

    it("puts a new replica on the executor with the fewest isolates", () => {
      const current = assignment({ busy: { a0: 3 } });
      const result = placeWith([demand("busy", 3), demand("fn", 1)], current, [node("a", { executors: 2 })]);
      expect(plainOf(result.assignment).fn).toEqual({ a1: 1 });
    });

    it("prefers a node that already holds the bundle", () => {
      const nodes = [node("a"), node("b"), node("c", { bundles: ["sha256:fn"] })];
      expect(plainOf(placeWith([demand("fn", 1)], empty, nodes).assignment)).toEqual({ fn: { c0: 1 } });
    });

    it("picks the best fit by memory: the node with the least free memory that still fits", () => {
      const nodes = [node("a", { memoryMb: 100 }), node("b", { memoryMb: 40 }), node("c", { memoryMb: 10 })];
      const result = placeWith([demand("fn", 1, { memoryMb: 32 })], empty, nodes);
      expect(plainOf(result.assignment)).toEqual({ fn: { b0: 1 } });
    });

    it("changes nothing when the same demand is placed again", () => {
      const nodes = [node("a", { executors: 2 }), node("b", { executors: 3 }), node("c")];
      const demands = [demand("x", 7), demand("y", 2, { memoryMb: 64 }), demand("z", 12)];
      const first = placeWith(demands, empty, nodes);
      const again = placeWith(demands, first.assignment, nodes);
      expect(plainOf(again.assignment)).toEqual(plainOf(first.assignment));
    });

    it("leaves other functions in place when one grows", () => {
      const nodes = [node("a", { executors: 2 }), node("b", { executors: 2 })];
      const before = placeWith([demand("x", 3), demand("y", 2)], empty, nodes);
      const after = placeWith([demand("x", 3), demand("y", 6)], before.assignment, nodes);
      expect(plainOf(after.assignment).x).toEqual(plainOf(before.assignment).x);
    });

    it("shrinks the largest replicas first and keeps the spread across nodes", () => {
      const current = assignment({ fn: { a0: 4, a1: 1, b0: 1 } });
      const nodes = [node("a", { executors: 2 }), node("b")];
      expect(plainOf(placeWith([demand("fn", 3)], current, nodes).assignment)).toEqual({ fn: { a0: 1, a1: 1, b0: 1 } });
      expect(plainOf(placeWith([demand("fn", 2)], current, nodes).assignment)).toEqual({ fn: { a1: 1, b0: 1 } });
    });

    it("re-places a lost node's replicas and leaves the rest where they are", () => {
      const current = assignment({ fn: { a0: 1, b0: 1, c0: 1 } });
      const nodes = [node("a"), node("b"), node("c", { state: "lost" }), node("d")];
      expect(plainOf(placeWith([demand("fn", 3)], current, nodes).assignment)).toEqual({ fn: { a0: 1, b0: 1, d0: 1 } });
    });

    it("empties a draining node", () => {
      const current = assignment({ x: { a0: 2 }, y: { a0: 1, b0: 1 } });
      const nodes = [node("a", { state: "draining" }), node("b", { executors: 2 })];
      const result = placeWith([demand("x", 2), demand("y", 2)], current, nodes);
      expect(plainOf(result.assignment)).toEqual({ x: { b0: 1, b1: 1 }, y: { b0: 1, b1: 1 } });
    });

    it("gives a function with desired 0 no replicas", () => {
      const result = placeWith([demand("fn", 0)], assignment({ fn: { a0: 3 } }), [node("a")]);
      expect(result.assignment.has("fn")).toBe(false);
      expect(result.unplaced.size).toBe(0);
    });

    it("evicts keep-alive-only functions, latest predicted arrival first, before refusing", () => {
      const current = assignment({ soon: { a0: 2 }, later: { a1: 2 } });
      const nodes = [node("a", { executors: 3, memoryMb: 64 })];
      const demands = [
        demand("soon", 2, { evictable: { predictedNextArrivalMs: 60_000 } }),
        demand("later", 2, { evictable: { predictedNextArrivalMs: 3_600_000 } }),
        demand("hot", 2),
      ];
      const result = placeWith(demands, current, nodes);
      expect(plainOf(result.assignment)).toEqual({ hot: { a1: 1, a2: 1 }, soon: { a0: 2 } });
      expect(result.evicted).toEqual(["later"]);
      expect([...result.unplaced]).toEqual([["later", 2]]);
    });

    it("reports what does not fit as unplaced", () => {
      const result = placeWith([demand("big", 5, { memoryMb: 30 })], empty, [node("a", { memoryMb: 100 })]);
      expect(plainOf(result.assignment)).toEqual({ big: { a0: 3 } });
      expect([...result.unplaced]).toEqual([["big", 2]]);
      expect(result.evicted).toEqual([]);
    });

    it("rejects a demand named twice", () => {
      expect(() => placeWith([demand("fn", 1), demand("fn", 2)], empty, [node("a")])).toThrow(RangeError);
    });

    it("never exceeds memory or the replica cap, and accounts for every instance (1,000 seeded cases)", () => {
      const next = random(42);
      const int = (n: number) => Math.floor(next() * n);
      const states = ["ready", "ready", "ready", "draining", "lost"] as const;
      for (let run = 0; run < 1_000; run++) {
        const nodes = Array.from({ length: 1 + int(6) }, (_, i) =>
          node(`n${i}-`, { executors: int(4), memoryMb: int(2_048), state: states[int(5)], bundles: ["sha256:f0"] }),
        );
        const demands = Array.from({ length: 1 + int(6) }, (_, i) =>
          demand(`f${i}`, int(20), {
            memoryMb: 8 + int(120),
            ...(next() < 0.4 ? { evictable: { predictedNextArrivalMs: int(5) * 60_000 } } : {}),
          }),
        );
        const executors = nodes.flatMap((n) => n.executors.map((e) => e.id)).concat("ghost0");
        const current = new Map(
          demands.map((d) => [d.name, new Map(executors.filter(() => next() < 0.3).map((e) => [e, int(7)]))]),
        );
        const cap = 1 + int(5);
        const result = placeWith(demands, current, nodes, { maxIsolatesPerReplica: cap });
        const memoryOf = new Map(demands.map((d) => [d.name, d.memoryMb]));
        for (const n of nodes) {
          const ids = new Set(n.executors.map((e) => e.id));
          let usedMb = 0;
          for (const [fn, replicas] of result.assignment) {
            for (const [e, count] of replicas) if (ids.has(e)) usedMb += count * (memoryOf.get(fn) ?? 0);
          }
          expect(usedMb).toBeLessThanOrEqual(n.state === "ready" ? n.memoryMb : 0);
        }
        for (const d of demands) {
          const replicas = [...(result.assignment.get(d.name) ?? new Map<string, number>()).values()];
          expect(replicas.every((count) => Number.isInteger(count) && count >= 1 && count <= cap)).toBe(true);
          expect(replicas.reduce((a, b) => a + b, 0) + (result.unplaced.get(d.name) ?? 0)).toBe(d.desired);
          if (d.desired === 0) expect(result.assignment.has(d.name)).toBe(false);
        }
        const again = placeWith(demands, result.assignment, nodes, { maxIsolatesPerReplica: cap });
        expect(plainOf(again.assignment)).toEqual(plainOf(result.assignment));
        expect(again.evicted).toEqual([]);
      }
    });
  });
}

runPlacementSuite("place", place);
