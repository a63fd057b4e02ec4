/** One function's load on one executor, as reported on SUBJECTS.load. */
export interface FunctionLoad {
  readonly name: string;
  /** FunctionRecord.version the pool runs. */
  readonly version: string;
  /** Invocations in flight on this executor (running or queued inside its isolates). */
  readonly inFlight: number;
  /** Warm isolates in the pool. */
  readonly isolates: number;
  /** Isolates the scheduler assigned (the pool may hold fewer until demand needs them). */
  readonly maxIsolates: number;
  /** Requests one isolate takes at target: the pool's capacity is isolates × concurrency. */
  readonly concurrency: number;
  /** Invocations started since the pool loaded: a counter, so arrivals between reports are not lost. */
  readonly invocations: number;
}

/**
 * What an executor publishes on SUBJECTS.load: sent when its load changes (at most every
 * {@link LOAD_REPORT_MIN_GAP_MS}) and every `intervalMs` regardless. Gateways route on it; the
 * scheduler autoscales on it. An executor that stops reporting is taken out of routing.
 */
export interface LoadReport {
  readonly node: string;
  /** Executor id: the token in its invocation subjects (SUBJECTS.invoke). */
  readonly executor: string;
  readonly pid: number;
  /** Grows with every report from one executor, so a reordered older report is ignored. */
  readonly seq: number;
  readonly intervalMs: number;
  readonly functions: readonly FunctionLoad[];
}

/**
 * What a gateway publishes on SUBJECTS.gatewayLoad, like an executor's report: the requests it has
 * outstanding per function (sent and not yet answered, or held on the cold path). Requests in transit
 * are demand the executors cannot see: with 200 clients on a busy machine, executors saw ~150 in flight.
 */
export interface GatewayLoadReport {
  readonly gateway: string;
  readonly seq: number;
  readonly intervalMs: number;
  /** Functions with requests outstanding; a function absent has none. */
  readonly functions: readonly { readonly name: string; readonly outstanding: number }[];
}

/** The executor's periodic report interval: a silent executor is noticed within a few of them. */
export const LOAD_REPORT_INTERVAL_MS = 500;
/** Reports on change are at most this frequent (the 100–250 ms). */
export const LOAD_REPORT_MIN_GAP_MS = 100;
/** Without a report for this long an executor gets no new request (target: 2.5 s). */
export const LOAD_REPORT_STALE_MS = 2_000;

/** Worker → everyone: an executor process is gone; requests in flight on it will never be answered. */
export interface ExecutorLost {
  readonly node: string;
  readonly executor: string;
}

const EXECUTOR_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** True for a string that can be an executor id (one subject token). */
export function isExecutorId(value: unknown): value is string {
  return typeof value === "string" && EXECUTOR_ID.test(value);
}

const isCount = (value: unknown): value is number => typeof value === "number" && value >= 0 && value < 1e12;

/** Reads a load report; null for anything malformed (the subject is open to any NATS client today). */
export function parseLoadReport(data: Uint8Array): LoadReport | null {
  const report = parseJson(data) as Partial<LoadReport> | null;
  if (
    !report ||
    typeof report.node !== "string" ||
    !isExecutorId(report.executor) ||
    !isCount(report.seq) ||
    !isCount(report.intervalMs) ||
    !Array.isArray(report.functions)
  )
    return null;
  for (const fn of report.functions as Partial<FunctionLoad>[]) {
    if (
      typeof fn?.name !== "string" ||
      typeof fn.version !== "string" ||
      !isCount(fn.inFlight) ||
      !isCount(fn.isolates) ||
      !isCount(fn.maxIsolates) ||
      !isCount(fn.concurrency) ||
      !isCount(fn.invocations)
    )
      return null;
  }
  return report as LoadReport;
}

/** Reads a gateway's load report; null for anything malformed. */
export function parseGatewayLoadReport(data: Uint8Array): GatewayLoadReport | null {
  const report = parseJson(data) as Partial<GatewayLoadReport> | null;
  const valid =
    report &&
    isExecutorId(report.gateway) &&
    isCount(report.seq) &&
    isCount(report.intervalMs) &&
    Array.isArray(report.functions) &&
    report.functions.every((f) => typeof f?.name === "string" && isCount(f.outstanding));
  return valid ? (report as GatewayLoadReport) : null;
}

/** Reads an executor-lost notice; null for anything malformed. */
export function parseExecutorLost(data: Uint8Array): ExecutorLost | null {
  const lost = parseJson(data) as Partial<ExecutorLost> | null;
  return lost && typeof lost.node === "string" && isExecutorId(lost.executor) ? (lost as ExecutorLost) : null;
}

function parseJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
}
