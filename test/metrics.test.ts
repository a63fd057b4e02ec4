import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpRequest, HttpResponse } from "../gateway/index.ts";
import { startMetricsServer } from "../metrics/index.ts";
import { FunctionStore, parseTraceparent } from "../protocol/index.ts";
import { bodyText, type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";
import { pollUntil } from "./support/poll.ts";

/**
 * /metrics of a gateway, a scheduler and a worker (whose executors are real child processes) after
 * real invocations, and W3C trace context from the caller to the function, sync and async.
 */

let cluster: InProcessCluster;
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;
/** Every invocation id seen: none may appear anywhere in any /metrics. */
const invocationIds = new Set<string>();

const auth: [string, string] = ["authorization", `Bearer ${TEST_TOKEN}`];

async function call(target: string, headers: Array<[string, string]> = []): Promise<HttpResponse> {
  const req: HttpRequest = { method: "GET", target, headers: [["host", "test"], ...headers], body: new Uint8Array() };
  const res = await cluster.gateway.handle(req);
  const id = res.headers.find(([name]) => name === "x-hearth-id")?.[1];
  if (id) invocationIds.add(id);
  return res;
}

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The samples of a Prometheus text exposition (enough of the format for these tests). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`Not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[name as string] = value as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels` (0 when there is none). */
function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

const workerSamples = async () =>
  parseExposition(await (cluster.worker as NonNullable<InProcessCluster["worker"]>).metrics());
const schedulerSamples = async () =>
  parseExposition(await (cluster.scheduler as NonNullable<InProcessCluster["scheduler"]>).metrics());
const gatewaySamples = async () => parseExposition(bodyText(await call("/metrics", [auth])));

beforeAll(async () => {
  cluster = await startInProcessCluster();
  await cluster.hearth.deploy("traced", {
    code: `export default { fetch(r) { return new Response(r.headers.get("traceparent") ?? "none"); } };`,
  });
  await cluster.hearth.deploy("boom", { code: `export default { fetch() { throw new Error("boom"); } };` });
  await cluster.hearth.deploy("slow", {
    code: `export default { async fetch(r) {
      if (new URL(r.url).pathname === "/wait") await new Promise((resolve) => setTimeout(resolve, 5000));
      return new Response("done");
    } };`,
    timeoutMs: 300,
  });
});

afterAll(async () => {
  await cluster?.close();
});

describe("W3C trace context", () => {
  it("continues the caller's trace: the function sees the same trace id and flags with a new parent id", async () => {
    const res = await call("/fn/traced", [["traceparent", TRACEPARENT]]);
    expect(res.status).toBe(200);
    const seen = parseTraceparent(bodyText(res));
    expect(seen).toMatchObject({ version: "00", traceId: TRACE_ID, flags: "01" });
    expect(seen?.parentId).not.toBe(PARENT_ID);
  });

  it("starts a new trace for an invalid traceparent, and leaves a request without one untraced", async () => {
    const seen = parseTraceparent(
      bodyText(await call("/fn/traced", [["traceparent", `ff-${TRACE_ID}-${PARENT_ID}-01`]])),
    );
    expect(seen).not.toBeNull();
    expect(seen?.traceId).not.toBe(TRACE_ID);
    expect(bodyText(await call("/fn/traced", []))).toBe("none");
  });

  it("carries the trace through an async invocation", async () => {
    const accepted = await call("/fn/traced", [
      ["prefer", "respond-async"],
      ["traceparent", TRACEPARENT],
    ]);
    expect(accepted.status).toBe(202);
    const { id } = JSON.parse(bodyText(accepted)) as { id: string };
    invocationIds.add(id);
    const status = await pollUntil(
      async () => JSON.parse(bodyText(await call(`/v1/invocations/${id}`, [auth]))).invocation,
      (invocation: { state: string; response?: { body: string } }) => invocation.state === "succeeded",
      "the async invocation to succeed",
    );
    // The status API gives the stored body base64-encoded.
    const seen = parseTraceparent(Buffer.from(status.response?.body ?? "", "base64").toString());
    expect(seen).toMatchObject({ traceId: TRACE_ID, flags: "01" });
    expect(seen?.parentId).not.toBe(PARENT_ID);
  });
});

describe("/metrics", () => {
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) expect((await call("/fn/traced")).status).toBe(200);
    expect((await call("/fn/boom")).status).toBe(500);
    expect((await call("/fn/slow/wait")).status).toBe(504);
    // The timeout disposed the only isolate: this request waits for a new one (a cold start in the executor).
    expect((await call("/fn/slow")).status).toBe(200);
    expect((await call("/fn/no-such-function")).status).toBe(404);
  });

  it("the gateway's needs a token that may read everything", async () => {
    const res = await call("/metrics");
    expect(res.status).toBe(401);
    const wrong = await call("/metrics", [["authorization", "Bearer nope"]]);
    expect(wrong.status).toBe(401);
  });

  it("the gateway's counts requests by function and status class, and cold paths", async () => {
    const samples = await gatewaySamples();
    // 1 continued, 2 new traces, 3 plain, the 202 of the async one.
    expect(sampleValue(samples, "hearth_http_requests_total", { function: "traced", status_class: "2xx" })).toBe(7);
    expect(sampleValue(samples, "hearth_http_requests_total", { function: "boom", status_class: "5xx" })).toBe(1);
    expect(sampleValue(samples, "hearth_http_requests_total", { function: "slow", status_class: "5xx" })).toBe(1);
    // An unknown name is not a label value: a scan of random names cannot grow the series.
    expect(samples.some((s) => s.labels.function === "no-such-function")).toBe(false);
    expect(
      sampleValue(samples, "hearth_http_requests_total", { function: "", status_class: "4xx" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleValue(samples, "hearth_http_request_duration_seconds_count", { function: "traced", status_class: "2xx" }),
    ).toBe(7);
    // The first request of each function found no warm executor.
    expect(sampleValue(samples, "faas_coldstarts_total", { function: "traced", trigger: "http" })).toBe(1);
    expect(sampleValue(samples, "faas_coldstarts_total", { function: "boom", trigger: "http" })).toBe(1);
    expect(sampleValue(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
  });

  it("the worker's sums its executors' invocations by function, version, trigger and status", async () => {
    const samples = await pollUntil(
      workerSamples,
      (s) => sampleValue(s, "faas_invocations_total", { function: "traced", trigger: "async" }) === 1,
      "the async invocation in the worker's metrics",
    );
    const deployed = await (await FunctionStore.open(cluster.nc)).getEntry("traced");
    const ok = samples.filter((s) => s.name === "faas_invocations_total" && s.labels.function === "traced");
    expect(ok.map((s) => s.labels.trigger).sort()).toEqual(["async", "http"]);
    for (const s of ok) {
      expect(s.labels.status).toBe("ok");
      expect(s.labels.version).toBe(deployed?.record.version);
    }
    expect(sampleValue(samples, "faas_invocations_total", { function: "traced", trigger: "http", status: "ok" })).toBe(
      6,
    );
    expect(sampleValue(samples, "faas_invocations_total", { function: "boom", status: "error" })).toBe(1);
    expect(sampleValue(samples, "faas_errors_total", { function: "boom", status: "error" })).toBe(1);
    expect(sampleValue(samples, "faas_invocations_total", { function: "slow", status: "timeout" })).toBe(1);
    expect(sampleValue(samples, "faas_invocations_total", { function: "slow", status: "ok" })).toBe(1);
    expect(sampleValue(samples, "faas_timeouts_total", { function: "slow", trigger: "http" })).toBe(1);
    expect(sampleValue(samples, "hearth_limit_kills_total", { function: "slow", limit: "timeout" })).toBe(1);
    // The request after the timeout waited for a new isolate in the executor.
    expect(sampleValue(samples, "faas_coldstarts_total", { function: "slow", trigger: "http" })).toBe(1);
    expect(
      sampleValue(samples, "faas_invoke_duration_seconds_count", { function: "traced", trigger: "http", status: "ok" }),
    ).toBe(6);
    const slowTimeout = { function: "slow", trigger: "http", status: "timeout" };
    expect(sampleValue(samples, "faas_invoke_duration_seconds_sum", slowTimeout)).toBeGreaterThanOrEqual(0.3);
    expect(sampleValue(samples, "faas_invoke_duration_seconds_bucket", { ...slowTimeout, le: "0.25" })).toBe(0);
    expect(sampleValue(samples, "faas_invoke_duration_seconds_bucket", { ...slowTimeout, le: "+Inf" })).toBe(1);
    // Every isolate made: the load's, and the one after the timeout.
    expect(sampleValue(samples, "faas_init_duration_seconds_count", { function: "slow" })).toBe(2);
    expect(sampleValue(samples, "faas_init_duration_seconds_count", { function: "traced" })).toBe(1);
    // The worker's own process metrics, and its executors' summed under their prefix.
    expect(sampleValue(samples, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(sampleValue(samples, "hearth_executor_process_cpu_user_seconds_total")).toBeGreaterThan(0);
  });

  it("the scheduler's reports isolates, desired isolates, queue depth and leadership", async () => {
    const samples = await pollUntil(
      schedulerSamples,
      // Each comes from the scheduler's own reports and decisions: under load, one may lag a tick.
      (s) =>
        sampleValue(s, "hearth_isolates", { function: "traced" }) >= 1 &&
        sampleValue(s, "hearth_isolates_desired", { function: "traced" }) >= 1 &&
        sampleValue(s, "hearth_scheduler_leader") === 1,
      "warm and desired isolates of traced in the leader's metrics",
    );
    expect(sampleValue(samples, "hearth_scheduler_leader")).toBe(1);
    expect(sampleValue(samples, "hearth_isolates_desired", { function: "traced" })).toBeGreaterThanOrEqual(1);
    expect(samples.some((s) => s.name === "hearth_queue_depth" && s.labels.function === "traced")).toBe(true);
    expect(sampleValue(samples, "hearth_queue_depth", { function: "traced" })).toBe(0);
  });

  it("no series carries an invocation id, or any label outside the bounded set", async () => {
    const allowed = new Set(["function", "version", "trigger", "status", "status_class", "limit", "le", "reason"]);
    const all = [...(await gatewaySamples()), ...(await workerSamples()), ...(await schedulerSamples())];
    const fromPrefix = (name: string) =>
      /^(process_|nodejs_|hearth_executor_process_|hearth_executor_nodejs_)/.test(name);
    expect(invocationIds.size).toBeGreaterThanOrEqual(8);
    for (const sample of all) {
      for (const [name, value] of Object.entries(sample.labels)) {
        expect(invocationIds.has(value), `${sample.name} carries an invocation id`).toBe(false);
        // prom-client's own process metrics have their own few labels (space, type, version, kind...).
        if (!fromPrefix(sample.name)) expect(allowed.has(name), `${sample.name}{${name}}`).toBe(true);
      }
    }
    const triggers = new Set(all.map((s) => s.labels.trigger).filter(Boolean));
    for (const trigger of triggers) expect(["http", "async", "queue", "cron"]).toContain(trigger);
  });

  it("is served by the shared metrics server over HTTP, and nothing else is", async () => {
    const worker = cluster.worker as NonNullable<InProcessCluster["worker"]>;
    await using server = await startMetricsServer({ host: "127.0.0.1", port: 0, metrics: () => worker.metrics() });
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sampleValue(parseExposition(await res.text()), "faas_invocations_total", { function: "boom" })).toBe(1);
    expect((await fetch(server.url.replace("/metrics", "/other"))).status).toBe(404);
    expect((await fetch(server.url, { method: "POST" })).status).toBe(405);
  });

  it("counts an executor restart; the dead executor's counts are gone (a counter reset)", async () => {
    const worker = cluster.worker as NonNullable<InProcessCluster["worker"]>;
    const [pid] = worker.executorPids;
    process.kill(pid as number, "SIGKILL");
    const samples = await pollUntil(
      workerSamples,
      (s) =>
        sampleValue(s, "hearth_executor_restarts_total", { reason: "died" }) === 1 &&
        sampleValue(s, "hearth_executor_process_cpu_user_seconds_total") > 0,
      "the restart in the worker's metrics",
    );
    expect(sampleValue(samples, "faas_invocations_total", { function: "boom" })).toBe(0);
  });
});
