/**
 * What metrics and trace context add per invocation, measured on the exact calls the hot paths make
 * (`node bench/metrics-overhead.ts`). Not part of `npm run bench`: the full A/B of a cluster is
 * `BENCH_PARTS=hello npm run bench` with and without this change.
 *
 * - executor: the series lookup and record of runtime/executor/core-transport.ts (two clock reads,
 *   two counter increments, one histogram observation), plus the trigger header read in decodeInvocation;
 * - gateway: the request count and duration of gateway/handler.ts, the cold-start check, and the trace
 *   context (parse or start, a new span id, the forwarded header list);
 * - for scale, the same counter and histogram through prom-client's cached `labels()` children.
 */
import { headers as natsHeaders } from "@nats-io/transport-node";
import { Counter, Histogram, Registry } from "prom-client";
import { GatewayMetrics } from "../gateway/index.ts";
import { Router } from "../gateway/routing/router.ts";
import { FaasMetrics, INVOKE_DURATION_BUCKETS } from "../metrics/index.ts";
import { HEADERS, traceOfHeaders, withTraceHeaders } from "../protocol/index.ts";

const N = Number(process.env.N ?? 2_000_000);
const ROUNDS = 5;

function bench(name: string, op: (i: number) => void): void {
  for (let i = 0; i < 200_000; i++) op(i);
  const runs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < N; i++) op(i);
    runs.push(Number(process.hrtime.bigint() - started) / N / 1000);
  }
  runs.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(58)} median ${(runs[2] as number).toFixed(3)} µs/op (min ${(runs[0] as number).toFixed(3)})`,
  );
}

let sink = 0;

const faas = new FaasMetrics(new Registry());
bench("executor: of() + record(ok) + 2 clock reads", () => {
  const started = performance.now();
  const m = faas.of("hello", "0123456789abcdef", "http");
  m.record("ok", (performance.now() - started) / 1000);
});

const h = natsHeaders();
h.set(HEADERS.invocationId, "abc");
h.set(HEADERS.version, "0123456789abcdef");
h.set(HEADERS.request, '{"method":"GET"}');
bench("executor: the extra trigger header read (absent)", () => {
  sink += h.get(HEADERS.trigger).length;
});

const gateway = new GatewayMetrics(new Registry());
const router = new Router();
const responses = Array.from({ length: 1024 }, () => ({ status: 200, headers: [], body: "" }));
bench("gateway: isWarm + label + observe + 2 clock reads", (i) => {
  const started = performance.now();
  sink += router.isWarm("hello") ? 1 : 0;
  const res = gateway.labelResponse(responses[i & 1023] as never, "hello");
  gateway.observe(res, started);
});

const incoming: Array<[string, string]> = [
  ["host", "127.0.0.1:8080"],
  ["user-agent", "wrk"],
  ["accept", "*/*"],
  ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
];
const plain = incoming.slice(0, 3);
bench("gateway: trace context, continued (4 headers)", () => {
  const req = { method: "GET", target: "/fn/hello", headers: incoming, body: new Uint8Array() };
  const trace = traceOfHeaders(req.headers);
  if (trace) sink += { ...req, headers: withTraceHeaders(req.headers, trace) }.headers.length;
});
bench("gateway: trace context, none sent (3 headers: untraced, only the scan)", () => {
  const req = { method: "GET", target: "/fn/hello", headers: plain, body: new Uint8Array() };
  const trace = traceOfHeaders(req.headers);
  sink += (trace ? { ...req, headers: withTraceHeaders(req.headers, trace) } : req).headers.length;
});

const registry = new Registry();
const labelNames = ["function", "version", "trigger", "status"];
const counter = new Counter({ name: "c_total", help: "c", labelNames, registers: [registry] });
const histogram = new Histogram({
  name: "h_seconds",
  help: "h",
  labelNames,
  buckets: [...INVOKE_DURATION_BUCKETS],
  registers: [registry],
});
const counterChild = counter.labels("hello", "0123456789abcdef", "http", "ok");
const histogramChild = histogram.labels("hello", "0123456789abcdef", "http", "ok");
bench("for scale: prom-client child inc() + observe() + 2 clock reads", () => {
  const started = performance.now();
  counterChild.inc();
  histogramChild.observe((performance.now() - started) / 1000);
});

if (sink === -1) console.log(sink);
