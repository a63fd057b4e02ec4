import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isolatesPerTest, requestJson, text } from "../../test/support/isolate.ts";
import { pollUntil } from "../../test/support/poll.ts";

/**
 * fetch() bodies streaming into the isolate from a real HTTP server on 127.0.0.1 that writes with
 * backpressure and says when its socket stopped taking bytes.
 */
const CHUNK = 64 * 1024;
const TOTAL_CHUNKS = 320; // 20 MiB
let server: Server;
let port: number;
/** The streaming response in progress, released by /release. */
let release: (() => void) | null = null;
/** Since when the stream's writer has waited for 'drain' (null: it is writing). */
let waitingSince: number | null = null;
/** Bytes the stream's socket had taken when last held back. */
let flushed = 0;
/** A writer waiting this long for 'drain' is held back by its reader, not by a busy loop. */
const HELD_MS = 200;
/** Streaming responses whose client went away before the end. */
let cutShort = 0;

function chunk(i: number): Buffer {
  const b = Buffer.alloc(CHUNK, i & 255);
  b.writeUInt32BE(i, 0);
  return b;
}

async function writeStream(res: ServerResponse): Promise<void> {
  res.on("close", () => {
    if (!res.writableFinished) cutShort++;
  });
  res.writeHead(200, { "content-type": "application/octet-stream" });
  res.write(chunk(0));
  await new Promise<void>((resolve) => {
    release = resolve;
  });
  for (let i = 1; i < TOTAL_CHUNKS; i++) {
    if (!res.write(chunk(i))) {
      waitingSince = Date.now();
      flushed = res.socket?.bytesWritten ?? 0;
      await new Promise((resolve) => res.once("drain", resolve));
      waitingSince = null;
    }
  }
  res.end();
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/stream") return void writeStream(res);
    if (req.url === "/release") {
      release?.();
      return res.end("released");
    }
    if (req.url === "/blocked") {
      // Answers once the stream's writer has been held back for HELD_MS: polled, as no event says so.
      const poll = setInterval(() => {
        if (waitingSince === null || Date.now() - waitingSince < HELD_MS) return;
        clearInterval(poll);
        res.end(String(flushed));
      }, 20);
      return;
    }
    res.end("small");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const { start } = isolatesPerTest();

describe("fetch() response bodies stream in", () => {
  it("a 20 MiB upstream body is read chunk by chunk as it arrives, held back while the function does not read", async () => {
    const { isolate } = await start(
      `export default { async fetch() {
        const base = "http://127.0.0.1:${port}";
        const r = await fetch(base + "/stream");
        const reader = r.body.getReader();
        // Only the first chunk has been sent: a fetch that buffered the whole body would wait forever.
        const first = await reader.read();
        const firstBytes = first.value.byteLength;
        await fetch(base + "/release");
        // The function reads nothing more until the server's writes are held back.
        const blockedAt = Number(await (await fetch(base + "/blocked")).text());
        let total = firstBytes, chunks = 1, inOrder = true, expected = 1;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          total += value.byteLength;
          chunks++;
          // Chunk boundaries need not match the server's: check each 64 KiB block's index where one starts.
          for (let at = (${CHUNK} - (total - value.byteLength) % ${CHUNK}) % ${CHUNK}; at + 4 <= value.byteLength; at += ${CHUNK}) {
            const i = new DataView(value.buffer, value.byteOffset + at, 4).getUint32(0);
            if (i !== expected++) inOrder = false;
          }
        }
        return Response.json({ firstBytes, blockedAt, total, chunks, inOrder, expected });
      } };`,
      { egressAllow: "127.0.0.1", cpuMs: 5_000, timeoutMs: 20_000 },
    );
    const outcome = await isolate.invoke("a", requestJson(), null);
    if (!outcome.ok) throw new Error(`${outcome.code}: ${outcome.message}`);
    const result = JSON.parse(text(outcome.body));
    expect(result.firstBytes).toBeGreaterThan(0);
    expect(result.firstBytes).toBeLessThanOrEqual(CHUNK);
    expect(result.total).toBe(TOTAL_CHUNKS * CHUNK);
    expect(result.inOrder).toBe(true);
    expect(result.expected).toBe(TOTAL_CHUNKS);
    expect(result.chunks).toBeGreaterThan(TOTAL_CHUNKS / 2);
    // Held back by the unread body: the server could write only socket buffers' worth, not the 20 MiB.
    expect(result.blockedAt).toBeLessThan((TOTAL_CHUNKS * CHUNK) / 2);
  }, 60_000);

  it("a small body with a content-length still comes whole, and a cancelled stream aborts the request", async () => {
    const { isolate } = await start(
      `export default { async fetch() {
        const base = "http://127.0.0.1:${port}";
        const small = await (await fetch(base + "/")).text();
        const r = await fetch(base + "/stream");
        const reader = r.body.getReader();
        await reader.read();
        await reader.cancel();
        return Response.json({ small });
      } };`,
      { egressAllow: "127.0.0.1", cpuMs: 2_000 },
    );
    const cutBefore = cutShort; // counted over the file: another test's cut must not count here
    const outcome = await isolate.invoke("a", requestJson(), null);
    if (!outcome.ok) throw new Error(`${outcome.code}: ${outcome.message}`);
    expect(JSON.parse(text(outcome.body))).toEqual({ small: "small" });
    // The cancelled request's connection is closed: the server sees its response cut short.
    await pollUntil(
      () => cutShort,
      (cut) => cut > cutBefore,
      "the cancelled response to be cut short",
      2_000,
    );
    expect(cutShort).toBe(cutBefore + 1);
  });
});
