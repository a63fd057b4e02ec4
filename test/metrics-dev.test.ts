import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HearthClient } from "../sdk/index.ts";
import { type DevCluster, startDevCluster } from "./support/cli.ts";

/** `hearth dev` serves /metrics from every component, each where it says, across real processes. */

let dev: DevCluster;
let metricsUrls: Record<string, string>;

async function scrape(url: string, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, text: await res.text() };
}

/** The value of the sample line that starts with `prefix` (name and labels as printed), or 0. */
function sample(text: string, prefix: string): number {
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

beforeAll(async () => {
  dev = await startDevCluster();
  const printed = dev
    .output()
    .split("\n")
    .find((line) => line.startsWith('{"url"'));
  metricsUrls = JSON.parse(printed ?? "{}").metrics;
  const hearth = new HearthClient({ url: dev.url, token: dev.token });
  await hearth.deploy("hello", { code: `export default { fetch() { return new Response("hi"); } };` });
  for (let i = 0; i < 3; i++) expect((await fetch(`${dev.url}/fn/hello`)).status).toBe(200);
});

afterAll(async () => {
  await dev?.stop();
});

describe("hearth dev", () => {
  it("prints where each component serves /metrics", () => {
    expect(metricsUrls.gateway).toBe(`${dev.url}/metrics`);
    expect(metricsUrls.scheduler).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(metricsUrls["worker-1"]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(metricsUrls["worker-1"]).not.toBe(metricsUrls.scheduler);
  });

  it("the worker's /metrics has its executor's invocations, fetched over IPC", async () => {
    const { status, text } = await scrape(metricsUrls["worker-1"] as string);
    expect(status).toBe(200);
    const ok = text.split("\n").filter((l) => l.startsWith('faas_invocations_total{function="hello"'));
    expect(ok).toHaveLength(1);
    expect(ok[0]).toMatch(/trigger="http",status="ok"} 3$/);
    expect(sample(text, "hearth_executor_process_resident_memory_bytes")).toBeGreaterThan(0);
  });

  it("the scheduler's /metrics says it leads", async () => {
    const { status, text } = await scrape(metricsUrls.scheduler as string);
    expect(status).toBe(200);
    expect(sample(text, "hearth_scheduler_leader ")).toBe(1);
  });

  it("the gateway's /metrics wants the admin token", async () => {
    expect((await scrape(`${dev.url}/metrics`)).status).toBe(401);
    const { status, text } = await scrape(`${dev.url}/metrics`, dev.token);
    expect(status).toBe(200);
    expect(sample(text, 'hearth_http_requests_total{function="hello",status_class="2xx"}')).toBe(3);
  });
});
