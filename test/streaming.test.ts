import { createHash } from "node:crypto";
import { type IncomingMessage, request } from "node:http";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway } from "../gateway/index.ts";
import { PULL_WINDOW } from "../gateway/streamed-body.ts";
import { type FunctionRecord, FunctionStore, SUBJECTS } from "../protocol/index.ts";
import { Executor, loadBootstrap } from "../runtime/index.ts";
import { type NatsServer, startNatsServer } from "../sdk/index.ts";
import { pollUntil } from "./support/poll.ts";
import { storeFunction } from "./support/store-function.ts";

/**
 * Streamed response bodies end to end: a real gateway on 127.0.0.1, real NATS, and an executor in
 * this process (so its buffered bytes can be read) running real isolates.
 */
let nats: NatsServer;
let nc: NatsConnection;
let executor: Executor;
let gateway: Gateway;
let record: FunctionRecord;

const CHUNK = 64 * 1024;
const STREAMED_LIMIT_CHUNKS = (20 * 1024 * 1024) / CHUNK;

/** Chunk `i` of /big: its index in its first four bytes, then a byte derived from it. */
const STREAMER = `
let produced = 0;
let cancelled = 0;
let release = null;
const released = new Promise((resolve) => { release = resolve; });
function chunk(i) {
  const b = new Uint8Array(${CHUNK}).fill((i * 31) & 255);
  new DataView(b.buffer).setUint32(0, i);
  return b;
}
export default { async fetch(req) {
  const url = new URL(req.url);
  if (url.pathname === "/produced") return new Response(String(produced));
  if (url.pathname === "/cancelled") return new Response(String(cancelled));
  if (url.pathname === "/release") { release(); return new Response("released"); }
  if (url.pathname === "/big") {
    const chunks = Number(url.searchParams.get("chunks"));
    const throwAt = Number(url.searchParams.get("throwAt") ?? -1);
    let i = 0;
    produced = 0;
    return new Response(new ReadableStream({ async pull(c) {
      await null;
      if (i === throwAt) throw new Error("broke after " + i + " chunks");
      if (i === chunks) return c.close();
      c.enqueue(chunk(i++));
      produced = i;
    }, cancel() { cancelled++; } }), { headers: { "content-type": "application/octet-stream" } });
  }
  if (url.pathname === "/gated") {
    return new Response(new ReadableStream({ async start(c) {
      c.enqueue(new TextEncoder().encode("first;"));
      await released;
      c.enqueue(new TextEncoder().encode("second"));
      c.close();
    } }));
  }
  return new Response("plain");
} };`;

function expectedHash(chunks: number): string {
  const hash = createHash("sha256");
  for (let i = 0; i < chunks; i++) {
    const b = Buffer.alloc(CHUNK, (i * 31) & 255);
    b.writeUInt32BE(i, 0);
    hash.update(b);
  }
  return hash.digest("hex");
}

function deploy(store: FunctionStore, name: string, source: string): Promise<FunctionRecord> {
  // Filling 20 MiB of chunks is the function's own work; on a busy 2-core machine the default
  // 50 ms did not always cover it. Pulls themselves are not charged as host work.
  return storeFunction(store, name, source, { timeoutMs: 20_000, cpuMs: 1_000 });
}

interface Received {
  readonly status: number;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
  /** The chunked body ended with its last chunk (false: cut short). */
  readonly complete: boolean;
}

/** A GET through the gateway's socket; `onResponse` sees the response before its body is read. */
function get(path: string, onResponse?: (res: IncomingMessage) => void): Promise<Received> {
  const url = new URL(`/fn/streamer${path}`, gateway.url);
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      const parts: Buffer[] = [];
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts),
          complete: res.complete,
        });
      res.on("data", (part: Buffer) => parts.push(part));
      res.on("end", done);
      res.on("error", done); // a reset mid-body: what was received, incomplete
      res.on("close", done); // destroyed by the test
      onResponse?.(res);
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  nats = await startNatsServer({});
  nc = await connect({ servers: nats.url });
  const store = await FunctionStore.open(nc);
  executor = new Executor({
    nc,
    id: "stream-exec",
    node: "test",
    bundles: store,
    fetchRecord: (name) => store.get(name),
    bootstrap: await loadBootstrap(),
    stemCells: 0,
    reportIntervalMs: 100,
  });
  await executor.start();
  gateway = new Gateway({ nc, token: "stream-token", port: 0 });
  await gateway.start();
  record = await deploy(store, "streamer", STREAMER);
  await executor.load(record);
  await pollUntil(
    () => get("/"),
    (r) => r.status === 200,
    "the gateway to route to the executor",
  );
}, 30_000);

afterAll(async () => {
  await gateway?.close();
  await executor?.close();
  await nc?.close();
  await nats?.stop();
});

describe("streamed response bodies through the gateway", () => {
  it("sends the head and first bytes before the function finished its body", async () => {
    let firstBytes = "";
    const received = await get("/gated", (res) => {
      res.once("data", (part: Buffer) => {
        firstBytes = part.toString();
        // The function is still waiting: only now is it let go on.
        void get("/release");
      });
    });
    expect(firstBytes).toBe("first;");
    expect(received.headers["transfer-encoding"]).toBe("chunked");
    expect(received.body.toString()).toBe("first;second");
    expect(received.complete).toBe(true);
  });

  it("a 20 MiB body streamed in 64 KiB chunks arrives intact", async () => {
    const received = await get(`/big?chunks=${STREAMED_LIMIT_CHUNKS}`);
    expect(received.status).toBe(200);
    expect(received.complete).toBe(true);
    expect(received.body.byteLength).toBe(20 * 1024 * 1024);
    expect(createHash("sha256").update(received.body).digest("hex")).toBe(expectedHash(STREAMED_LIMIT_CHUNKS));
    await pollUntil(
      () => executor.streams.open,
      (open) => open === 0,
      "the stream to be forgotten",
    );
  }, 60_000);

  it("a body past the streamed limit (20 MiB) is cut: the client gets a truncated chunked body", async () => {
    const received = await get(`/big?chunks=${STREAMED_LIMIT_CHUNKS + 10}`);
    expect(received.status).toBe(200);
    expect(received.complete).toBe(false);
    expect(received.body.byteLength).toBeLessThanOrEqual(20 * 1024 * 1024);
    expect(executor.limitCounts).toMatchObject({ "streamer ERR_PAYLOAD_TOO_LARGE": 1 });
  }, 60_000);

  it("a function that throws mid-stream gives a truncated response, and the executor serves the next request", async () => {
    const received = await get("/big?chunks=100&throwAt=5");
    expect(received.status).toBe(200);
    expect(received.complete).toBe(false);
    expect(received.body.byteLength).toBe(5 * CHUNK);
    const next = await get("/");
    expect(next.body.toString()).toBe("plain");
    await pollUntil(
      () => executor.streams.open,
      (open) => open === 0,
      "the stream to be forgotten",
    );
  });

  it("a client that does not read holds the function back; the executor buffers at most the pull window", async () => {
    let response: IncomingMessage | undefined;
    const received = get(`/big?chunks=${STREAMED_LIMIT_CHUNKS}`, (res) => {
      response = res;
      res.pause();
    });
    await pollUntil(() => response, Boolean, "the response head");
    // The function produces until the pulls stop; then its count stays put while the client waits.
    let last = -1;
    const held = await pollUntil(
      async () => {
        const now = Number((await get("/produced")).body.toString());
        const stable = now === last && now > 0;
        last = now;
        return stable ? now : -1;
      },
      (n) => n > 0,
      "the function to be held back",
    );
    expect(held).toBeLessThan(STREAMED_LIMIT_CHUNKS / 2);
    expect(executor.streams.peakBufferedBytes).toBeLessThanOrEqual(PULL_WINDOW * CHUNK);
    response?.resume();
    const body = (await received).body;
    expect(body.byteLength).toBe(20 * 1024 * 1024);
    expect(createHash("sha256").update(body).digest("hex")).toBe(expectedHash(STREAMED_LIMIT_CHUNKS));
  }, 60_000);

  it("a client that goes away mid-body cancels the function's stream and frees the executor's", async () => {
    const before = Number((await get("/cancelled")).body.toString());
    const cut = get(`/big?chunks=${STREAMED_LIMIT_CHUNKS}`, (res) => {
      res.once("data", () => res.destroy());
    });
    expect((await cut).complete).toBe(false);
    await pollUntil(
      () => executor.streams.open,
      (open) => open === 0,
      "the executor to drop the stream",
    );
    await pollUntil(
      async () => (await get("/cancelled")).body.toString(),
      (n) => Number(n) === before + 1,
      "the function's cancel()",
    );
  });

  it("a pool unloaded mid-body still finishes the body (pulls have a subject of their own)", async () => {
    const received = get("/big?chunks=50", (res) => {
      res.pause();
      void executor.unload("streamer", "test");
      res.resume();
    });
    const whole = await received;
    expect(whole.complete).toBe(true);
    expect(createHash("sha256").update(whole.body).digest("hex")).toBe(expectedHash(50));
    expect(executor.functions).not.toContain("streamer");
    await executor.load(record);
    await pollUntil(
      () => get("/"),
      (r) => r.status === 200,
      "the gateway to route to the reloaded function",
    );
  });

  it("an executor lost mid-body ends the response at once, truncated, instead of hanging", async () => {
    const received = get(`/big?chunks=${STREAMED_LIMIT_CHUNKS}`, (res) => {
      res.once("data", () => {
        res.pause();
        // What the worker announces when an executor process dies: the gateway fails its pulls.
        nc.publish(SUBJECTS.executorLost, JSON.stringify({ node: "test", executor: "stream-exec" }));
        res.resume();
      });
    });
    const cut = await received;
    expect(cut.complete).toBe(false);
    expect(cut.body.byteLength).toBeLessThan(20 * 1024 * 1024);
  });
});
