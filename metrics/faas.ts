import type { Registry } from "prom-client";
import type { ErrorCode } from "../protocol/index.ts";
import { CounterFamily, type CounterSeries, HistogramFamily, type HistogramSeries } from "./series.ts";

/**
 * The invocation metrics, named after OpenTelemetry's FaaS semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/faas/faas-metrics/) in Prometheus style: `faas.invocations`
 * becomes `faas_invocations_total`, `faas.invoke_duration` `faas_invoke_duration_seconds`. Every label is
 * bounded: function names and versions that exist, four triggers, five statuses. Never an invocation id.
 */

/**
 * How an invocation reached the function. OTel's `faas.trigger` values are http, pubsub, timer,
 * datasource and other: http → http, queue → pubsub, cron → timer, async → other (an HTTP request
 * answered 202 and run later from Hearth's own queue).
 */
export type Trigger = "http" | "async" | "queue" | "cron";
export const TRIGGERS: readonly Trigger[] = ["http", "async", "queue", "cron"];

/**
 * What came of an invocation: ok (the function answered, whatever its HTTP status), error (it threw,
 * answered something that is not a Response, or failed to load), timeout (wall clock), limit (CPU
 * time, memory, response size), system (Hearth's side: executor lost, internal).
 */
export type InvocationStatus = "ok" | "error" | "timeout" | "limit" | "system";
const STATUSES: readonly InvocationStatus[] = ["ok", "error", "timeout", "limit", "system"];

/** The kind of limit that disposed an isolate, for `hearth_limit_kills_total{limit}`. */
export type LimitKind = "timeout" | "cpu" | "memory";

/** The status of a failed invocation's code (see InvocationStatus). */
export function statusOfCode(code: ErrorCode): InvocationStatus {
  switch (code) {
    case "ERR_FUNCTION_TIMEOUT":
      return "timeout";
    case "ERR_FUNCTION_CPU_TIME":
    case "ERR_FUNCTION_MEMORY":
    case "ERR_PAYLOAD_TOO_LARGE":
      return "limit";
    case "ERR_FUNCTION_THREW":
    case "ERR_INVALID_RESPONSE":
    case "ERR_FUNCTION_INVALID":
    case "ERR_NO_HANDLER":
      return "error";
    default:
      return "system";
  }
}

/** The limit behind a code when that limit kills the isolate, else null. */
export function limitOfCode(code: ErrorCode): LimitKind | null {
  if (code === "ERR_FUNCTION_TIMEOUT") return "timeout";
  if (code === "ERR_FUNCTION_CPU_TIME") return "cpu";
  if (code === "ERR_FUNCTION_MEMORY") return "memory";
  return null;
}

/**
 * Seconds. OTel's recommended faas.invoke_duration buckets (5 ms … 10 s) with three below them: a warm
 * hello-world invocation takes well under a millisecond here, and would all land in the first bucket.
 */
export const INVOKE_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30,
];
/** Seconds: an isolate from a stem cell takes 1–2 ms, one built from the snapshot about 5 ms. */
export const INIT_DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export const INVOCATION_LABELS = ["function", "version", "trigger", "status"] as const;
export const COLD_START_LABELS = ["function", "version", "trigger"] as const;

/** `faas_coldstarts_total`, registered alone (the gateway counts its cold-path requests with it). */
export function coldStartFamily(registry: Registry): CounterFamily {
  return new CounterFamily(registry, {
    name: "faas_coldstarts_total",
    help: "Invocations that waited for an isolate to be created (a scale from zero, or a pool growing).",
    labelNames: COLD_START_LABELS,
  });
}

/** The FaaS metrics of one process's invocations (an executor's). */
export class FaasMetrics {
  readonly invocations: CounterFamily;
  readonly errors: CounterFamily;
  readonly timeouts: CounterFamily;
  readonly coldStarts: CounterFamily;
  readonly invokeDuration: HistogramFamily;
  readonly initDuration: HistogramFamily;
  /** function → version → one InvocationMetrics per trigger (TRIGGERS order). */
  readonly #cache = new Map<string, Map<string, Array<InvocationMetrics | undefined>>>();

  constructor(registry: Registry) {
    this.invocations = new CounterFamily(registry, {
      name: "faas_invocations_total",
      help: "Invocations run, by outcome.",
      labelNames: INVOCATION_LABELS,
    });
    this.errors = new CounterFamily(registry, {
      name: "faas_errors_total",
      help: "Invocations that failed (every status but ok).",
      labelNames: INVOCATION_LABELS,
    });
    this.timeouts = new CounterFamily(registry, {
      name: "faas_timeouts_total",
      help: "Invocations stopped at their wall-clock timeout.",
      labelNames: COLD_START_LABELS,
    });
    this.coldStarts = coldStartFamily(registry);
    this.invokeDuration = new HistogramFamily(registry, {
      name: "faas_invoke_duration_seconds",
      help: "Time from the executor taking an invocation to its outcome.",
      labelNames: INVOCATION_LABELS,
      buckets: INVOKE_DURATION_BUCKETS,
    });
    this.initDuration = new HistogramFamily(registry, {
      name: "faas_init_duration_seconds",
      help: "Isolate creation and module evaluation, per isolate created.",
      labelNames: ["function", "version"],
      buckets: INIT_DURATION_BUCKETS,
    });
  }

  /** The metrics of one function version and trigger; cached, so the hot path allocates nothing. */
  of(fn: string, version: string, trigger: Trigger): InvocationMetrics {
    let versions = this.#cache.get(fn);
    if (!versions) {
      versions = new Map();
      this.#cache.set(fn, versions);
    }
    let byTrigger = versions.get(version);
    if (!byTrigger) {
      byTrigger = [];
      versions.set(version, byTrigger);
    }
    const index = TRIGGERS.indexOf(trigger);
    let metrics = byTrigger[index];
    if (!metrics) {
      metrics = new InvocationMetrics(this, fn, version, trigger);
      byTrigger[index] = metrics;
    }
    return metrics;
  }

  /** One isolate of `fn` at `version` was created in `seconds`. */
  observeInit(fn: string, version: string, seconds: number): void {
    this.initDuration.observe(this.initDuration.series(fn, version), seconds);
  }

  /**
   * Forgets a function's series (it was removed, not just unloaded): its counters restart from zero
   * if it comes back, which Prometheus reads as a counter reset.
   */
  forget(fn: string): void {
    this.#cache.delete(fn);
    for (const family of [this.invocations, this.errors, this.timeouts, this.coldStarts]) family.remove("function", fn);
    for (const family of [this.invokeDuration, this.initDuration]) family.remove("function", fn);
  }
}

/** The series of one status of one function version and trigger. */
interface StatusSeries {
  readonly invocations: CounterSeries;
  readonly duration: HistogramSeries;
  /** null for ok. */
  readonly errors: CounterSeries | null;
}

/** The series of one function version and trigger, each status's made on its first use. */
export class InvocationMetrics {
  readonly #metrics: FaasMetrics;
  readonly #fn: string;
  readonly #version: string;
  readonly #trigger: Trigger;
  readonly #byStatus: Array<StatusSeries | undefined> = [];
  #timeouts: CounterSeries | null = null;
  #coldStarts: CounterSeries | null = null;

  constructor(metrics: FaasMetrics, fn: string, version: string, trigger: Trigger) {
    this.#metrics = metrics;
    this.#fn = fn;
    this.#version = version;
    this.#trigger = trigger;
  }

  /** One invocation ended with `status` after `seconds`: two counter increments and one observation. */
  record(status: InvocationStatus, seconds: number): void {
    const i = STATUSES.indexOf(status);
    let series = this.#byStatus[i];
    if (series === undefined) {
      series = this.#statusSeries(status);
      this.#byStatus[i] = series;
    }
    series.invocations.value++;
    this.#metrics.invokeDuration.observe(series.duration, seconds);
    if (series.errors !== null) series.errors.value++;
    if (status === "timeout") {
      this.#timeouts ??= this.#metrics.timeouts.series(this.#fn, this.#version, this.#trigger);
      this.#timeouts.value++;
    }
  }

  /** This invocation waited for an isolate to be created. */
  coldStart(): void {
    this.#coldStarts ??= this.#metrics.coldStarts.series(this.#fn, this.#version, this.#trigger);
    this.#coldStarts.value++;
  }

  #statusSeries(status: InvocationStatus): StatusSeries {
    const labels = [this.#fn, this.#version, this.#trigger, status] as const;
    const m = this.#metrics;
    return {
      invocations: m.invocations.series(...labels),
      duration: m.invokeDuration.series(...labels),
      errors: status === "ok" ? null : m.errors.series(...labels),
    };
  }
}
