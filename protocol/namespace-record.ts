/** The namespace every function belongs to unless it names another. */
export const DEFAULT_NAMESPACE = "default";

/** Limits on what one namespace may hold and run; an absent quota is no limit. */
export interface NamespaceQuotas {
  /** Invocations in flight at once over all gateways. */
  readonly concurrentInvocations?: number;
  /** Invocations admitted per minute over all gateways. */
  readonly invocationsPerMinute?: number;
  /** Functions deployed. */
  readonly functions?: number;
  /** Sum of the bundle sizes of the namespace's functions. */
  readonly bundleBytes?: number;
}

/** What the control plane stores per namespace, as JSON in the namespaces KV bucket. */
export interface NamespaceRecord {
  readonly name: string;
  readonly quotas: NamespaceQuotas;
  readonly createdAt: string;
  readonly updatedAt: string;
}
