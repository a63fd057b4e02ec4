import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HearthClient, type InvocationView } from "../sdk/index.ts";
import { type DevCluster, runCli, startDevCluster } from "./support/cli.ts";
import { type Sink, startSink } from "./support/sink.ts";

/**
 * Async invocations, dead letters and a RabbitMQ trigger through `hearth dev`: real processes, each
 * with its own least-privilege NATS identity, so every grant they need is exercised.
 */
let cluster: DevCluster;
let hearth: HearthClient;
let sink: Sink;

beforeAll(async () => {
  sink = await startSink();
  cluster = await startDevCluster({
    HEARTH_EGRESS_ALLOW: "127.0.0.1",
    HEARTH_ASYNC_RETRY_BASE_MS: "50",
    HEARTH_ASYNC_RETRY_CAP_MS: "200",
  });
  hearth = new HearthClient({ url: cluster.url, token: cluster.token });
});

afterAll(async () => {
  await cluster?.stop();
  await sink?.close();
});

async function settled(id: string): Promise<InvocationView> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const view = await hearth.invocation(id);
    if (view.state === "succeeded" || view.state === "failed") return view;
    if (Date.now() > deadline) throw new Error(`${id} still ${view.state}\n${cluster.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("async invocations under hearth dev", () => {
  it("hearth invoke --async answers with an id; the invocation runs and its response is kept", async () => {
    await hearth.deploy("greeter", {
      code: `export default { async fetch(req) { return new Response("hello " + (await req.text())); } };`,
    });
    const env = { HEARTH_URL: cluster.url, HEARTH_TOKEN: cluster.token };
    const accepted = await runCli(["invoke", "greeter", "--async", "--data", "world"], env);
    expect(accepted.code).toBe(0);
    const id = accepted.stdout.trim();
    const view = await settled(id);
    expect(view).toMatchObject({ state: "succeeded", attempts: 1 });
    const response = view.response;
    expect(response && "body" in response ? Buffer.from(response.body, "base64").toString() : null).toBe("hello world");
    const shown = await runCli(["invocation", id], env);
    expect(shown.stdout).toContain("succeeded");
  });

  it("a failing invocation is retried, then dead-lettered, and can be replayed", async () => {
    await hearth.deploy("failing", {
      code: `export default { fetch() { throw new Error("no"); } };`,
      async: { retries: 1 },
    });
    const { id } = await hearth.invokeAsync("failing", { body: "x" });
    const view = await settled(id);
    expect(view).toMatchObject({
      state: "failed",
      attempts: 2,
      deadLettered: true,
      error: { code: "ERR_FUNCTION_THREW" },
    });
    const page = await hearth.deadLetters("failing");
    expect(page.deadLetters.map((d) => d.id)).toEqual([id]);
    expect(await hearth.replayDeadLetters("failing")).toBe(1);
    expect((await hearth.deadLetters("failing")).deadLetters).toEqual([]);
    const again = await settled(id); // ran again (and failed again)
    expect(again).toMatchObject({ state: "failed", attempts: 2, deadLettered: true });
    expect(Date.parse(again.finishedAt ?? "")).toBeGreaterThan(Date.parse(view.finishedAt ?? ""));
  });

  it("a RabbitMQ trigger runs the function's queue() on each message", async () => {
    const queue = `hearth-dev-test-${Date.now()}`;
    const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
    const channel = await connection.createChannel();
    await channel.assertQueue(queue);
    try {
      await hearth.deploy("consumer", {
        code: `export default { async queue(batch) {
          for (const m of batch.messages) await fetch(${JSON.stringify(`${sink.url}/posted`)}, { method: "POST", body: String(m.body) });
        } };`,
      });
      await hearth.addTrigger("consumer", { source: `amqp://guest:guest@127.0.0.1:5672/${queue}` });
      for (const word of ["one", "two", "three"]) channel.sendToQueue(queue, Buffer.from(word));
      const deadline = Date.now() + 20_000;
      while (sink.bodies("posted").length < 3 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sink.bodies("posted").sort()).toEqual(["one", "three", "two"]);
    } finally {
      await channel.deleteQueue(queue);
      await connection.close();
    }
  });
});
