/** Where a function can be invoked: its pool on one executor, with what this gateway knows of its load. */
export interface Endpoint {
  readonly executor: string;
  readonly node: string;
  /** SUBJECTS.invoke(executor, fn), built once. */
  readonly subject: string;
  /** Requests this gateway has in flight on it: exact, and current to the request. */
  local: number;
  /** Requests other gateways had in flight on it at its last report (its total minus ours). */
  others: number;
  /** Concurrent requests it takes at target (isolates × concurrency), at least 1. */
  capacity: number;
  /** When its executor last reported (ms, the router's clock). */
  seenAt: number;
}

/** An endpoint's load as a fraction of its capacity: what the load-aware policies compare. */
export function loadOf(endpoint: Endpoint): number {
  return (endpoint.local + endpoint.others) / endpoint.capacity;
}
