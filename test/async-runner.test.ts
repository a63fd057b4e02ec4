import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { nuid } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  AsyncStore,
  CONSUMERS,
  type InvocationStatus,
  STREAMS,
} from "../protocol/index.ts";
import { type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";
import { deadLettersOf } from "./support/sink.ts";

/**
 * The worker side of async invocations, against a real nats-server, scheduler, worker and executor:
 * messages stored in HEARTH_ASYNC (as the gateway stores them) are pulled, run, retried and
 * dead-lettered, with their status kept in the invocations bucket.
 */
let cluster: InProcessCluster;
let store: AsyncStore;
const ACK_WAIT_MS = 1_500;

beforeAll(async () => {
  cluster = await startInProcessCluster({
    worker: { ackWaitMs: ACK_WAIT_MS, retry: { baseMs: 50, capMs: 200 }, egressAllow: "127.0.0.1" },
  });
  store = await AsyncStore.open(cluster.nc);
});

afterAll(async () => {
  await cluster?.close();
});

function submit(fn: string, body = "", extra: { callbackUrl?: string; path?: string } = {}): Promise<string> {
  const id = nuid.next();
  const requestJson = JSON.stringify({
    method: "POST",
    url: `http://test${extra.path ?? "/"}`,
    headers: [["content-type", "text/plain"]],
  });
  return store
    .submit({ id, fn, requestJson, body: new TextEncoder().encode(body), acceptedAt: Date.now(), ...extra })
    .then(() => id);
}

async function settled(id: string, timeoutMs = 20_000): Promise<InvocationStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await store.status(id);
    if (status && (status.state === "succeeded" || status.state === "failed")) return status;
    if (Date.now() > deadline) throw new Error(`invocation ${id} still ${status?.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("async invocations on the worker", () => {
  it("runs an invocation of a cold function and stores its response", async () => {
    await cluster.hearth.deploy("async-echo", {
      code: `export default { async fetch(req) {
        return new Response("got " + (await req.text()) + " at " + new URL(req.url).pathname, { status: 201, headers: { "x-kind": "echo" } });
      } };`,
    });
    const id = await submit("async-echo", "hello", { path: "/a/b" });
    const status = await settled(id);
    expect(status).toMatchObject({ state: "succeeded", attempts: 1, function: "async-echo" });
    expect(status.response?.status).toBe(201);
    expect(status.response?.headers).toContainEqual(["x-kind", "echo"]);
    expect(
      new TextDecoder().decode(
        (await store.responseBody(status.response ?? { status: 0, headers: [], bodyBytes: 0 })) ?? undefined,
      ),
    ).toBe("got hello at /a/b");
    expect(Date.parse(status.finishedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(status.startedAt ?? ""));
    // Acked: nothing left in the work queue.
    const consumer = await store.jsm.consumers.info(STREAMS.async, CONSUMERS.async("async-echo"));
    expect(consumer.num_pending + consumer.num_ack_pending).toBe(0);
  });

  it("keeps a large response in the object store", async () => {
    await cluster.hearth.deploy("async-big", {
      code: `export default { fetch() { return new Response("x".repeat(300000)); } };`,
    });
    const status = await settled(await submit("async-big"));
    expect(status.response?.bodyObject).toBeDefined();
    expect((await store.responseBody(status.response ?? { status: 0, headers: [], bodyBytes: 0 }))?.byteLength).toBe(
      300_000,
    );
  });

  it("retries a failed attempt and succeeds on the next", async () => {
    await cluster.hearth.deploy("async-flaky", {
      code: `let calls = 0; export default { fetch() {
        if (++calls === 1) throw new Error("first call fails");
        return new Response("ok after " + calls);
      } };`,
    });
    const status = await settled(await submit("async-flaky"));
    expect(status).toMatchObject({ state: "succeeded", attempts: 2 });
  });

  it("dead-letters after its retries, counting attempts, with the error and origin", async () => {
    await cluster.hearth.deploy("async-poison", {
      code: `export default { fetch() { return new Response("broken", { status: 503 }); } };`,
    });
    const id = await submit("async-poison", "payload-1");
    const status = await settled(id);
    expect(status).toMatchObject({ state: "failed", attempts: 3, deadLettered: true });
    expect(status.error?.code).toBe("ERR_FUNCTION_STATUS");
    expect(status.response?.status).toBe(503);
    const letters = await deadLettersOf(store.jsm, "async-poison");
    expect(letters).toHaveLength(1);
    expect(letters[0]?.data).toBe("payload-1");
    expect(letters[0]?.headers).toMatchObject({
      [ASYNC_HEADERS.id]: id,
      [ASYNC_HEADERS.errorCode]: "ERR_FUNCTION_STATUS",
      [ASYNC_HEADERS.attempts]: "3",
      [ASYNC_HEADERS.origin]: ASYNC_SUBJECTS.invoke("async-poison"),
    });
    // Removed from the work queue (term), not left there past MaxDeliver.
    const consumer = await store.jsm.consumers.info(STREAMS.async, CONSUMERS.async("async-poison"));
    expect(consumer.num_pending + consumer.num_ack_pending).toBe(0);
  });

  it("does not redeliver a function that runs longer than the ack window", async () => {
    await cluster.hearth.deploy("async-slow", {
      code: `export default { async fetch() { await new Promise((r) => setTimeout(r, 4000)); return new Response("slow"); } };`,
      timeoutMs: 10_000,
    });
    const id = await submit("async-slow");
    const status = await settled(id);
    expect(status).toMatchObject({ state: "succeeded", attempts: 1 });
    const consumer = await store.jsm.consumers.info(STREAMS.async, CONSUMERS.async("async-slow"));
    expect(consumer.num_redelivered).toBe(0);
    expect(consumer.delivered.consumer_seq).toBe(1);
  });

  it("posts the result to the callback URL", async () => {
    const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        received.push({ headers: req.headers, body });
        res.end("thanks");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/done`;
      await cluster.hearth.deploy("async-called-back", {
        code: `export default { fetch() { return Response.json({ answer: 42 }); } };`,
      });
      const id = await submit("async-called-back", "", { callbackUrl: url });
      await settled(id);
      const deadline = Date.now() + 10_000;
      let status = await store.status(id);
      while (status?.callback?.state === "pending" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        status = await store.status(id);
      }
      expect(status?.callback).toMatchObject({ url, state: "delivered", attempts: 1 });
      expect(received).toHaveLength(1);
      expect(received[0]?.headers).toMatchObject({
        "x-hearth-id": id,
        "x-hearth-state": "succeeded",
        "x-hearth-status": "200",
        "content-type": "application/json",
      });
      expect(JSON.parse(received[0]?.body ?? "")).toEqual({ answer: 42 });
    } finally {
      server.close();
    }
  });
});
