/** One change of a function's desired capacity, with the autoscaler's reason. */
export interface ScaleDecisionRecord {
  readonly at: number;
  readonly fn: string;
  readonly desired: number;
  readonly actual: number;
  readonly reason: string;
}

/** `hearth status --json` and `GET /v1/status`: what runs where, and why. */
export interface ClusterStatus {
  readonly leader: { readonly id: string; readonly epoch: number } | null;
  readonly nodes: readonly {
    readonly id: string;
    readonly state: "ready" | "draining" | "lost";
    readonly pid: number;
    readonly memoryMb: number;
    readonly lastSeenMsAgo: number;
    readonly executors: readonly { readonly id: string; readonly pid: number; readonly functions: readonly string[] }[];
  }[];
  readonly functions: readonly {
    readonly name: string;
    /** Isolates the autoscaler wants. */
    readonly desired: number;
    /** Isolates assigned over the cluster. */
    readonly actual: number;
    /** Isolates warm now, as executors report. */
    readonly warm: number;
    readonly nodes: readonly string[];
    readonly inFlight: number;
    /** Requests held on the cold path now (waiting for a pool to be placed). */
    readonly queued: number;
    readonly panic: boolean;
    readonly reason: string;
  }[];
  /** The latest changes of desired capacity, oldest first. */
  readonly decisions: readonly ScaleDecisionRecord[];
}

/** `GET /v1/status`: the leader's status plus the answering gateway's routing table. */
export interface ClusterStatusWithRoutes extends ClusterStatus {
  readonly gateway: {
    readonly routes: Readonly<
      Record<string, readonly { executor: string; node: string; inFlight: number; capacity: number }[]>
    >;
  };
}
