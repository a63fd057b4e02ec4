import type { Registry } from "prom-client";
import {
  CounterFamily,
  type CounterSeries,
  coldStartFamily,
  createRegistry,
  HistogramFamily,
  type HistogramSeries,
  INVOKE_DURATION_BUCKETS,
} from "../metrics/index.ts";
import type { HttpResponse } from "./http-types.ts";

/** 1xx … 5xx: the status of a response, bounded to five values. */
const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

interface RequestSeries {
  readonly requests: Array<CounterSeries | undefined>;
  readonly durations: Array<HistogramSeries | undefined>;
}

/**
 * The gateway's metrics: every HTTP request by function and status class with its duration
 * (`hearth_http_requests_total`, `hearth_http_request_duration_seconds`), the invocations that took
 * the cold path (`faas_coldstarts_total{trigger="http"}`), and the process metrics. `function` is
 * set only for a deployed function's invocations (the route cache knew it), and is "" for
 * everything else (control API, health, unknown names), so a scan of random names cannot grow
 * the series. Served at `GET /metrics` on the gateway's port, behind the admin token.
 */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly #requests: CounterFamily;
  readonly #durations: HistogramFamily;
  readonly #coldStarts: CounterFamily;
  readonly #byFunction = new Map<string, RequestSeries>();
  /** function → version → series. */
  readonly #coldByFunction = new Map<string, Map<string, CounterSeries>>();
  /** The function each invocation's response answered for; read once by {@link observe}. */
  readonly #functionOf = new WeakMap<HttpResponse, string>();

  constructor(registry: Registry = createRegistry()) {
    this.registry = registry;
    this.#requests = new CounterFamily(registry, {
      name: "hearth_http_requests_total",
      help: 'HTTP requests answered by the gateway; function is "" for anything but a deployed function.',
      labelNames: ["function", "status_class"],
    });
    this.#durations = new HistogramFamily(registry, {
      name: "hearth_http_request_duration_seconds",
      help: "Time from the request's head being read to its answer (the body included), in the gateway.",
      labelNames: ["function", "status_class"],
      buckets: INVOKE_DURATION_BUCKETS,
    });
    this.#coldStarts = coldStartFamily(registry);
  }

  /** Marks `response` as the answer of an invocation of `fn` (a deployed function). */
  labelResponse(response: HttpResponse, fn: string): HttpResponse {
    this.#functionOf.set(response, fn);
    return response;
  }

  /** Counts one answered request that started at `startedMs` (performance.now()). */
  observe(response: HttpResponse, startedMs: number): void {
    const fn = this.#functionOf.get(response) ?? "";
    let series = this.#byFunction.get(fn);
    if (!series) {
      series = { requests: [], durations: [] };
      this.#byFunction.set(fn, series);
    }
    const i = Math.min(Math.max(Math.floor(response.status / 100) - 1, 0), 4);
    let requests = series.requests[i];
    let duration = series.durations[i];
    if (requests === undefined || duration === undefined) {
      const statusClass = STATUS_CLASSES[i] as string;
      requests = this.#requests.series(fn, statusClass);
      duration = this.#durations.series(fn, statusClass);
      series.requests[i] = requests;
      series.durations[i] = duration;
    }
    requests.value++;
    this.#durations.observe(duration, (performance.now() - startedMs) / 1000);
  }

  /** An invocation of `fn` found no warm executor and waits for the cold path. */
  coldStart(fn: string, version: string): void {
    let versions = this.#coldByFunction.get(fn);
    if (!versions) {
      versions = new Map();
      this.#coldByFunction.set(fn, versions);
    }
    let series = versions.get(version);
    if (!series) {
      series = this.#coldStarts.series(fn, version, "http");
      versions.set(version, series);
    }
    series.value++;
  }

  /** The exposition text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
