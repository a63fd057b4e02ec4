import { LOAD_REPORT_STALE_MS, type LoadReport, SUBJECTS } from "../../protocol/index.ts";
import type { Endpoint } from "./endpoint.ts";
import { DEFAULT_POLICY, type PolicyName, policyFactory, type RoutingPolicy } from "./policies.ts";

export interface RouterOptions {
  readonly policy?: PolicyName;
  /** An executor silent for this long gets no new request (LOAD_REPORT_STALE_MS). */
  readonly staleMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
}

interface ExecutorEntry {
  readonly node: string;
  seq: number;
  /** This executor's endpoint per function. */
  readonly endpoints: Map<string, Endpoint>;
}

interface FunctionRoutes {
  readonly policy: RoutingPolicy;
  endpoints: Endpoint[];
}

/**
 * The gateway's routing table: which executors hold a warm pool of each function, and how loaded
 * they are, fed by the executors' load reports. `pick` is on the hot path: no allocation unless an
 * endpoint has gone stale.
 */
export class Router {
  readonly #routes = new Map<string, FunctionRoutes>();
  readonly #executors = new Map<string, ExecutorEntry>();
  readonly #newPolicy: () => RoutingPolicy;
  readonly #staleMs: number;
  readonly #now: () => number;

  constructor(options: RouterOptions = {}) {
    this.#newPolicy = policyFactory(options.policy ?? DEFAULT_POLICY, options.random);
    this.#staleMs = options.staleMs ?? LOAD_REPORT_STALE_MS;
    this.#now = options.now ?? Date.now;
  }

  /** The endpoint for the next request to `fn`, or null when no fresh executor holds it (cold path). */
  pick(fn: string): Endpoint | null {
    const routes = this.#routes.get(fn);
    if (!routes || routes.endpoints.length === 0) return null;
    const oldest = this.#now() - this.#staleMs;
    let candidates = routes.endpoints;
    for (const e of candidates) {
      if (e.seenAt < oldest) {
        candidates = candidates.filter((c) => c.seenAt >= oldest);
        break;
      }
    }
    return candidates.length > 0 ? routes.policy.pick(candidates) : null;
  }

  /** Whether a fresh executor holds `fn`; false: its next request takes the cold path. Read-only, allocates nothing. */
  isWarm(fn: string): boolean {
    const routes = this.#routes.get(fn);
    if (!routes) return false;
    const oldest = this.#now() - this.#staleMs;
    for (const e of routes.endpoints) if (e.seenAt >= oldest) return true;
    return false;
  }

  /** Applies an executor's report: its functions now, their load, and that it is alive. */
  observe(report: LoadReport): void {
    const now = this.#now();
    let entry = this.#executors.get(report.executor);
    if (entry && report.seq <= entry.seq) return; // an older report, reordered
    if (!entry) {
      entry = { node: report.node, seq: 0, endpoints: new Map() };
      this.#executors.set(report.executor, entry);
    }
    entry.seq = report.seq;
    const present = new Set<string>();
    for (const load of report.functions) {
      present.add(load.name);
      const endpoint = this.#endpoint(report.executor, entry, load.name, now);
      endpoint.capacity = Math.max(1, load.isolates) * Math.max(1, load.concurrency);
      endpoint.others = Math.max(0, load.inFlight - endpoint.local);
    }
    for (const [fn, endpoint] of entry.endpoints) {
      if (present.has(fn)) endpoint.seenAt = now;
      else this.#remove(fn, endpoint, entry);
    }
    if (entry.endpoints.size === 0) this.#executors.delete(report.executor);
  }

  /** An endpoint learnt from the scheduler (a pool it just placed), before that executor reports it. */
  add(fn: string, executor: string, node: string): void {
    let entry = this.#executors.get(executor);
    if (!entry) {
      entry = { node, seq: 0, endpoints: new Map() };
      this.#executors.set(executor, entry);
    }
    // Only a new endpoint is fresh from this: one that reported and went quiet stays out of routing.
    if (!entry.endpoints.has(fn)) this.#endpoint(executor, entry, fn, this.#now());
  }

  /** Forgets one endpoint (its executor answered "no responders": it no longer holds the function). */
  drop(fn: string, endpoint: Endpoint): void {
    const entry = this.#executors.get(endpoint.executor);
    if (entry?.endpoints.get(fn) === endpoint) this.#remove(fn, endpoint, entry);
  }

  /** Forgets an executor that died. */
  lose(executor: string): void {
    const entry = this.#executors.get(executor);
    if (!entry) return;
    for (const [fn, endpoint] of entry.endpoints) this.#remove(fn, endpoint, entry);
    this.#executors.delete(executor);
  }

  /** Endpoints per function, for status pages and tests. */
  snapshot(): Record<string, Endpoint[]> {
    return Object.fromEntries([...this.#routes].map(([fn, r]) => [fn, r.endpoints.map((e) => ({ ...e }))]));
  }

  #endpoint(executor: string, entry: ExecutorEntry, fn: string, now: number): Endpoint {
    let endpoint = entry.endpoints.get(fn);
    if (!endpoint) {
      endpoint = {
        executor,
        node: entry.node,
        subject: SUBJECTS.invoke(executor, fn),
        local: 0,
        others: 0,
        capacity: 1,
        seenAt: now,
      };
      entry.endpoints.set(fn, endpoint);
      let routes = this.#routes.get(fn);
      if (!routes) {
        routes = { policy: this.#newPolicy(), endpoints: [] };
        this.#routes.set(fn, routes);
      }
      // A new array, not a push: a pick iterating the old one is never disturbed.
      routes.endpoints = [...routes.endpoints, endpoint];
    }
    return endpoint;
  }

  #remove(fn: string, endpoint: Endpoint, entry: ExecutorEntry): void {
    entry.endpoints.delete(fn);
    const routes = this.#routes.get(fn);
    if (!routes) return;
    routes.endpoints = routes.endpoints.filter((e) => e !== endpoint);
    if (routes.endpoints.length === 0) this.#routes.delete(fn);
  }
}
