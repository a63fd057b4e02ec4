/**
 * Placement of isolates onto executors: pure and deterministic (ties broken by id), so the leader can
 * re-run it on every heartbeat and a follower that takes over computes the same answer.
 */

/** One executor process of a worker node. */
export type ExecutorView = { readonly id: string };

/** A worker node as the scheduler sees it. */
export interface NodeView {
  readonly id: string;
  /** Only `ready` nodes get isolates; replicas on `draining` and `lost` nodes are placed elsewhere. */
  readonly state: "ready" | "draining" | "lost";
  /** Memory available for isolates on this node. */
  readonly memoryMb: number;
  readonly executors: readonly ExecutorView[];
  /** Bundle digests already cached on the node: loading there skips the bundle fetch. */
  readonly bundles: ReadonlySet<string>;
}

/** What one function wants from the cluster. */
export interface Demand {
  readonly name: string;
  /** Instances (isolates) wanted in the cluster, from the autoscaler. */
  readonly desired: number;
  /** Per isolate. */
  readonly memoryMb: number;
  readonly digest: string;
  /** Only kept warm by the keep-alive policy (no traffic now): may be evicted to make room; larger = evicted first */
  readonly evictable?: { readonly predictedNextArrivalMs: number };
}

/** fn name -> executor id -> isolates on that executor (a "replica" = one function's pool on one executor). */
export type Assignment = ReadonlyMap<string, ReadonlyMap<string, number>>;

/** Tuning of {@link place}. */
export interface PlaceOptions {
  /** Isolates of one function on one executor. Default 4, the executors' per-function pool limit today. */
  readonly maxIsolatesPerReplica: number;
}

/** The result of {@link place}. */
export interface Placement {
  readonly assignment: Assignment;
  /** fn name -> instances that did not fit (only functions short of `desired`). */
  readonly unplaced: ReadonlyMap<string, number>;
  /** Functions that lost replicas to make room, by name; what they could not regrow is in `unplaced`. */
  readonly evicted: readonly string[];
}

const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const sumOf = (replicas: ReadonlyMap<string, number>): number => [...replicas.values()].reduce((a, b) => a + b, 0);
/** Demands that must stay warm sort as -Infinity: needed first, never evicted. */
const soon = (d: Demand): number => d.evictable?.predictedNextArrivalMs ?? Number.NEGATIVE_INFINITY;

/** The cluster while placing: ready nodes only, isolates per executor, memory per node. */
class Board {
  readonly nodes: readonly NodeView[];
  readonly #replicas: ReadonlyMap<string, Map<string, number>>;
  /** Executor id -> its node, ready nodes only. */
  readonly nodeOf: ReadonlyMap<string, NodeView>;
  readonly #usedMb = new Map<string, number>();
  readonly #isolates = new Map<string, number>();
  readonly #memoryMb: ReadonlyMap<string, number>;

  constructor(nodes: readonly NodeView[], demands: readonly Demand[]) {
    this.nodes = nodes.filter((n) => n.state === "ready").sort((a, b) => byId(a.id, b.id));
    this.nodeOf = new Map(this.nodes.flatMap((n) => n.executors.map((e) => [e.id, n] as const)));
    this.#memoryMb = new Map(demands.map((d) => [d.name, d.memoryMb]));
    this.#replicas = new Map(demands.map((d) => [d.name, new Map()]));
  }

  freeMb(node: NodeView): number {
    return node.memoryMb - (this.#usedMb.get(node.id) ?? 0);
  }
  isolatesOn(executor: string): number {
    return this.#isolates.get(executor) ?? 0;
  }
  of(fn: string): Map<string, number> {
    return this.#replicas.get(fn) ?? new Map();
  }
  replicasOnNode(fn: string, node: NodeView | undefined): number {
    return (node?.executors ?? []).filter((e) => this.of(fn).has(e.id)).length;
  }
  /** Adds (or with a negative delta removes) isolates of `fn` on `executor`, keeping the totals. */
  add(fn: string, executor: string, delta: number): void {
    const node = this.nodeOf.get(executor);
    if (node === undefined) return;
    const count = (this.of(fn).get(executor) ?? 0) + delta;
    if (count > 0) this.of(fn).set(executor, count);
    else this.of(fn).delete(executor);
    this.#isolates.set(executor, this.isolatesOn(executor) + delta);
    this.#usedMb.set(node.id, (this.#usedMb.get(node.id) ?? 0) + delta * (this.#memoryMb.get(fn) ?? 0));
  }
}

/** Keeps a function's replicas on ready nodes (sticky), capped, shrunk to desired, within memory. */
function keep(board: Board, d: Demand, current: ReadonlyMap<string, number> | undefined, cap: number): void {
  const kept = new Map<string, number>();
  for (const [executor, n] of [...(current ?? [])].sort(([a], [b]) => byId(a, b))) {
    if (board.nodeOf.get(executor) !== undefined && n >= 1) kept.set(executor, Math.min(Math.floor(n), cap));
  }
  const onNode = (e: string) => [...kept.keys()].filter((k) => board.nodeOf.get(k) === board.nodeOf.get(e)).length;
  // Shrink the largest replica first; among equals, the node holding the most replicas, to keep the spread.
  for (let excess = sumOf(kept) - d.desired; excess > 0; excess--) {
    const [victim] = [...kept.keys()].sort(
      (a, b) => (kept.get(b) ?? 0) - (kept.get(a) ?? 0) || onNode(b) - onNode(a) || byId(a, b),
    );
    if (victim === undefined) break;
    const left = (kept.get(victim) ?? 0) - 1;
    if (left > 0) kept.set(victim, left);
    else kept.delete(victim);
  }
  for (const [executor, n] of kept) {
    const node = board.nodeOf.get(executor);
    const fits = node === undefined ? 0 : Math.min(n, Math.floor(board.freeMb(node) / d.memoryMb));
    if (fits > 0) board.add(d.name, executor, fits);
  }
}

/** The executor for one more isolate of `d`, or undefined when no ready node has room. */
function pickExecutor(board: Board, d: Demand, cap: number): string | undefined {
  const mine = board.of(d.name);
  const roomy = board.nodes.filter((n) => board.freeMb(n) >= d.memoryMb);
  const onNode = (e: string) => board.replicasOnNode(d.name, board.nodeOf.get(e));
  const leastLoaded = (ids: string[]) =>
    ids.sort((a, b) => board.isolatesOn(a) - board.isolatesOn(b) || onNode(a) - onNode(b) || byId(a, b))[0];
  // 1. A node holding none of it (spread across nodes): bundle cached first, then best fit, then id.
  const fresh = roomy
    .filter((n) => n.executors.length > 0 && board.replicasOnNode(d.name, n) === 0)
    .sort((a, b) => {
      const cached = Number(b.bundles.has(d.digest)) - Number(a.bundles.has(d.digest));
      return cached || board.freeMb(a) - board.freeMb(b) || byId(a.id, b.id);
    });
  if (fresh[0] !== undefined) return leastLoaded(fresh[0].executors.map((e) => e.id));
  // 2. Another executor: the fewest isolates of any function, then the node with fewest of this one.
  const spare = roomy.flatMap((n) => n.executors.filter((e) => !mine.has(e.id)).map((e) => e.id));
  if (spare.length > 0) return leastLoaded(spare);
  // 3. Grow existing replicas round-robin: the smallest first, up to the cap.
  const roomyIds = new Set(roomy.map((n) => n.id));
  const growable = [...mine].filter(([e, n]) => n < cap && roomyIds.has(board.nodeOf.get(e)?.id ?? ""));
  return growable.sort(([a, n], [b, m]) => n - m || byId(a, b))[0]?.[0];
}

/**
 * Evicts replicas of keep-alive-only functions, latest predicted arrival first, until one node can
 * take an isolate of `d`. Only the prefix of that order needed on that one node goes.
 */
function evictFor(board: Board, d: Demand, demands: readonly Demand[], cap: number, evicted: Set<string>): boolean {
  const victims = demands
    .filter((v) => v.evictable !== undefined && soon(v) > soon(d))
    .flatMap((v) => [...board.of(v.name)].map(([executor, n]) => ({ v, executor, mb: n * v.memoryMb })))
    .sort((a, b) => soon(b.v) - soon(a.v) || byId(a.v.name, b.v.name) || byId(a.executor, b.executor));
  const freedMb = new Map<string, number>();
  for (const [i, victim] of victims.entries()) {
    const node = board.nodeOf.get(victim.executor);
    // Room is useless on a node whose executors all hold a full replica of `d`.
    if (node === undefined || node.executors.every((e) => (board.of(d.name).get(e.id) ?? 0) >= cap)) continue;
    freedMb.set(node.id, (freedMb.get(node.id) ?? 0) + victim.mb);
    if (board.freeMb(node) + (freedMb.get(node.id) ?? 0) < d.memoryMb) continue;
    for (const gone of victims.slice(0, i + 1).filter((x) => board.nodeOf.get(x.executor) === node)) {
      board.add(gone.v.name, gone.executor, -(board.of(gone.v.name).get(gone.executor) ?? 0));
      evicted.add(gone.v.name);
    }
    return true;
  }
  return false;
}

/**
 * Places `demands` onto the executors of ready nodes, moving as little of `current` as it can.
 * Order: non-evictable demands by name, then evictable ones by predicted arrival. Growth spreads
 * across nodes, then executors, then grows replicas; evictable replicas make room before refusing.
 * @example place([{ name: "api", desired: 3, memoryMb: 16, digest: "sha256:…" }], new Map(), nodes)
 */
export function place(
  demands: readonly Demand[],
  current: Assignment,
  nodes: readonly NodeView[],
  options: Partial<PlaceOptions> = {},
): Placement {
  const cap = options.maxIsolatesPerReplica ?? 4;
  if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`maxIsolatesPerReplica must be an integer >= 1`);
  const names = new Set<string>();
  for (const d of demands) {
    const bad = (why: string) => new RangeError(`demand ${d.name}: ${why}`);
    if (names.has(d.name)) throw bad("appears twice");
    if (!Number.isInteger(d.desired) || d.desired < 0) throw bad("desired must be an integer >= 0");
    if (!(d.memoryMb > 0)) throw bad("memoryMb must be > 0");
    names.add(d.name);
  }
  // Evictable ones soonest-needed first: a victim always comes later, so it may regrow elsewhere.
  const ordered = [...demands].sort((a, b) => soon(a) - soon(b) || byId(a.name, b.name));
  const board = new Board(nodes, ordered);
  for (const d of ordered) keep(board, d, current.get(d.name), cap);
  const evicted = new Set<string>();
  for (const d of ordered) {
    for (let placed = sumOf(board.of(d.name)); placed < d.desired; placed++) {
      const executor =
        pickExecutor(board, d, cap) ??
        (evictFor(board, d, ordered, cap, evicted) ? pickExecutor(board, d, cap) : undefined);
      if (executor === undefined) break;
      board.add(d.name, executor, 1);
    }
  }
  const assignment = new Map<string, ReadonlyMap<string, number>>();
  const unplaced = new Map<string, number>();
  for (const d of [...ordered].sort((a, b) => byId(a.name, b.name))) {
    const mine = [...board.of(d.name)].sort(([a], [b]) => byId(a, b));
    if (mine.length > 0) assignment.set(d.name, new Map(mine));
    const short = d.desired - sumOf(board.of(d.name));
    if (short > 0) unplaced.set(d.name, short);
  }
  return { assignment, unplaced, evicted: [...evicted].sort(byId) };
}
