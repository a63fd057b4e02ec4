import { type GatewayLoadReport, LOAD_REPORT_STALE_MS } from "../../protocol/index.ts";

/**
 * Invocations in flight per namespace over all gateways: this gateway's own, counted as they start
 * and end, plus each other gateway's as its last load report (SUBJECTS.gatewayLoad, the report the
 * scheduler autoscales on) tells, per function, mapped to namespaces with this gateway's records.
 * Those reports are sent within 100 ms of a change and every 500 ms, so the others' part lags by up
 * to ~100 ms plus transit; a gateway silent for LOAD_REPORT_STALE_MS counts for nothing (it died).
 */
export class InFlightCounts {
  readonly #local = new Map<string, number>();
  readonly #peers = new Map<string, { atMs: number; byNamespace: Map<string, number> }>();

  /** This gateway's own plus the others' last reported, for `namespace`. */
  count(namespace: string, nowMs: number): number {
    let total = this.#local.get(namespace) ?? 0;
    for (const [gateway, peer] of this.#peers) {
      if (nowMs - peer.atMs > LOAD_REPORT_STALE_MS) this.#peers.delete(gateway);
      else total += peer.byNamespace.get(namespace) ?? 0;
    }
    return total;
  }

  /** One more here; returns the release, which is safe to call twice. */
  acquire(namespace: string): () => void {
    this.#local.set(namespace, (this.#local.get(namespace) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#local.get(namespace) ?? 1) - 1;
      if (left > 0) this.#local.set(namespace, left);
      else this.#local.delete(namespace);
    };
  }

  /** Another gateway's load report; `namespaceOf` maps its functions to their namespaces. */
  observe(report: GatewayLoadReport, namespaceOf: (fn: string) => string, nowMs: number): void {
    const byNamespace = new Map<string, number>();
    for (const { name, outstanding } of report.functions) {
      const namespace = namespaceOf(name);
      byNamespace.set(namespace, (byNamespace.get(namespace) ?? 0) + outstanding);
    }
    this.#peers.set(report.gateway, { atMs: nowMs, byNamespace });
  }
}
