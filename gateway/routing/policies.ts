import { type Endpoint, loadOf } from "./endpoint.ts";

/**
 * Chooses the endpoint for one request among the fresh endpoints of one function (never empty).
 * One instance per function, so a policy may keep state (a round-robin cursor).
 */
export interface RoutingPolicy {
  pick(candidates: readonly Endpoint[]): Endpoint;
}

export const POLICY_NAMES = ["random", "round-robin", "weighted", "least-loaded", "p2c"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
/**
 * Power of two choices: what Knative's activator uses for unlimited concurrency (lb_policy.go). It
 * needs no global scan, and it does not herd every gateway onto the one least-loaded executor, as
 * least-loaded does when several gateways see the same stale reports (Mitzenmacher 2001).
 */
export const DEFAULT_POLICY: PolicyName = "p2c";

type Random = () => number;

/** Reads a policy name (HEARTH_ROUTING_POLICY); undefined or empty → the default. Throws naming the choices. */
export function parsePolicyName(value: string | undefined): PolicyName {
  if (!value) return DEFAULT_POLICY;
  if ((POLICY_NAMES as readonly string[]).includes(value)) return value as PolicyName;
  throw new RangeError(`HEARTH_ROUTING_POLICY must be one of ${POLICY_NAMES.join(", ")}, got ${JSON.stringify(value)}`);
}

/** Returns a factory of per-function policies; `random` is injectable so tests are deterministic. */
export function policyFactory(name: PolicyName, random: Random = Math.random): () => RoutingPolicy {
  switch (name) {
    case "random":
      return () => ({ pick: (c) => c[Math.floor(random() * c.length)] ?? first(c) });
    case "round-robin":
      return () => {
        let cursor = 0;
        return { pick: (c) => c[cursor++ % c.length] ?? first(c) };
      };
    case "weighted":
      return () => ({ pick: (c) => pickWeighted(c, random) });
    case "least-loaded":
      return () => {
        // Rotating the starting point spreads ties instead of always favouring the first endpoint.
        let cursor = 0;
        return { pick: (c) => pickLeastLoaded(c, cursor++) };
      };
    case "p2c":
      return () => ({ pick: (c) => pickTwoChoices(c, random) });
  }
}

function first(c: readonly Endpoint[]): Endpoint {
  return c[0] as Endpoint;
}

/** Random, in proportion to capacity (isolates × concurrency). */
function pickWeighted(c: readonly Endpoint[], random: Random): Endpoint {
  let total = 0;
  for (const e of c) total += e.capacity;
  let point = random() * total;
  for (const e of c) {
    point -= e.capacity;
    if (point < 0) return e;
  }
  return first(c);
}

function pickLeastLoaded(c: readonly Endpoint[], start: number): Endpoint {
  let best = first(c);
  let bestLoad = Number.POSITIVE_INFINITY;
  for (let i = 0; i < c.length; i++) {
    const e = c[(start + i) % c.length] as Endpoint;
    const load = loadOf(e);
    if (load < bestLoad) {
      best = e;
      bestLoad = load;
    }
  }
  return best;
}

function pickTwoChoices(c: readonly Endpoint[], random: Random): Endpoint {
  if (c.length === 1) return first(c);
  const i = Math.floor(random() * c.length);
  // A second index distinct from the first, uniformly among the others.
  const j = (i + 1 + Math.floor(random() * (c.length - 1))) % c.length;
  const a = c[i] as Endpoint;
  const b = c[j] as Endpoint;
  return loadOf(b) < loadOf(a) ? b : a;
}
