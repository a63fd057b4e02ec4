import { describe, expect, it } from "vitest";
import { isolatesPerTest, requestJson, text } from "../../test/support/isolate.ts";
import type { InvokeOutcome } from "./function-isolate.ts";

const { start } = isolatesPerTest();

function ok(outcome: InvokeOutcome) {
  if (!outcome.ok) throw new Error(`${outcome.code}: ${outcome.message}`);
  return outcome;
}

/** Reads a streamed outcome to its end: the first part, then every chunk. */
async function readAll(outcome: InvokeOutcome): Promise<{ bytes: Buffer; chunks: number }> {
  const { body, stream } = ok(outcome);
  const parts = [Buffer.from(body)];
  let chunks = 0;
  if (stream)
    for (let c = await stream.read(); c !== null; c = await stream.read(), chunks++) parts.push(Buffer.from(c));
  return { bytes: Buffer.concat(parts), chunks };
}

describe("response bodies streamed out of the isolate", () => {
  it("a small body, or a stream already complete, comes whole with no stream (the hot path)", async () => {
    const { isolate } = await start(`export default { fetch(req) {
      if (req.url.endsWith("/bytes")) return new Response("hello");
      return new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("done")); c.close(); } }));
    } };`);
    const bytes = ok(await isolate.invoke("a", requestJson("http://fn.test/bytes"), null, { stream: true }));
    expect(text(bytes.body)).toBe("hello");
    expect(bytes.stream).toBeUndefined();
    const complete = ok(await isolate.invoke("b", requestJson(), null, { stream: true }));
    expect(text(complete.body)).toBe("done");
    expect(complete.stream).toBeUndefined();
  });

  it("a stream that waits for its producer answers with the head at once, then chunks as they come", async () => {
    const { isolate } = await start(`
      let release;
      export default { fetch(req) {
        if (req.url.endsWith("/go")) { release(); return new Response("released"); }
        return new Response(new ReadableStream({ async start(c) {
          c.enqueue(new TextEncoder().encode("first,"));
          await new Promise((r) => { release = r; });
          c.enqueue(new TextEncoder().encode("second"));
          c.close();
        } }), { headers: { "content-type": "text/plain" } });
      } };`);
    const outcome = ok(await isolate.invoke("a", requestJson(), null, { stream: true }));
    expect(outcome.head.status).toBe(200);
    expect(text(outcome.body)).toBe("first,");
    expect(outcome.stream).toBeDefined();
    const next = outcome.stream?.read();
    // The function is still in flight; a second request releases it.
    expect(isolate.inFlight).toBe(1);
    expect(text(ok(await isolate.invoke("b", requestJson("http://fn.test/go"), null)).body)).toBe("released");
    expect(text((await next) as Uint8Array)).toBe("second");
    expect(await outcome.stream?.read()).toBeNull();
    await outcome.stream?.closed;
    expect(isolate.inFlight).toBe(0);
  });

  it("a large byte body is split into 64 KiB chunks and arrives intact", async () => {
    const { isolate } = await start(`export default { fetch() {
      const b = new Uint8Array(1_000_000); for (let i = 0; i < b.length; i++) b[i] = i % 251;
      return new Response(b);
    } };`);
    const { bytes, chunks } = await readAll(await isolate.invoke("a", requestJson(), null, { stream: true }));
    expect(bytes.byteLength).toBe(1_000_000);
    expect(chunks).toBe(Math.ceil(1_000_000 / 65_536) - 1);
    expect(bytes.every((v, i) => v === i % 251)).toBe(true);
  });

  it("bytes held whole are still held to the whole-body limit: 413 before any head", async () => {
    const { isolate } = await start(
      `export default { fetch() { return new Response(new Uint8Array(7 * 1024 * 1024)); } };`,
    );
    const outcome = await isolate.invoke("a", requestJson(), null, { stream: true });
    expect(outcome).toMatchObject({ ok: false, code: "ERR_PAYLOAD_TOO_LARGE" });
  });

  it("a caller that cannot stream gets the body whole, under the whole-body limit", async () => {
    const { isolate } = await start(`export default { fetch() {
      let n = 0;
      return new Response(new ReadableStream({ async pull(c) {
        await null; if (n++ === 3) c.close(); else c.enqueue(new Uint8Array(100_000).fill(n));
      } }));
    } };`);
    const whole = ok(await isolate.invoke("a", requestJson(), null));
    expect(whole.stream).toBeUndefined();
    expect(whole.body.byteLength).toBe(300_000);
  });

  it("a function that throws mid-stream cuts the body with ERR_FUNCTION_THREW; the isolate serves on", async () => {
    const { isolate } = await start(`export default { fetch(req) {
      if (req.url.endsWith("/ok")) return new Response("fine");
      let n = 0;
      return new Response(new ReadableStream({ async pull(c) {
        await new Promise((r) => setTimeout(r, 1));
        if (n++ === 2) throw new Error("broke mid-stream");
        c.enqueue(new Uint8Array(10).fill(n));
      } }));
    } };`);
    const outcome = ok(await isolate.invoke("a", requestJson(), null, { stream: true }));
    const err = await readAll(outcome).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FUNCTION_THREW", message: "broke mid-stream" });
    expect(isolate.inFlight).toBe(0);
    expect(text(ok(await isolate.invoke("b", requestJson("http://fn.test/ok"), null)).body)).toBe("fine");
  });

  it("a stream past the streamed limit is cut with ERR_PAYLOAD_TOO_LARGE and the producer cancelled", async () => {
    const { isolate } = await start(
      `
      let cancelled = false;
      export default { fetch(req) {
        if (req.url.endsWith("/cancelled")) return new Response(String(cancelled));
        return new Response(new ReadableStream({
          async pull(c) { await null; c.enqueue(new Uint8Array(1024 * 1024)); },
          cancel() { cancelled = true; },
        }));
      } };`,
      { cpuMs: 2_000 },
    );
    const outcome = ok(await isolate.invoke("a", requestJson(), null, { stream: true }));
    const err = await readAll(outcome).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_PAYLOAD_TOO_LARGE" });
    expect(text(ok(await isolate.invoke("b", requestJson("http://fn.test/cancelled"), null)).body)).toBe("true");
  });

  it("the timeout covers the whole body: a stream that stalls ends with ERR_FUNCTION_TIMEOUT", async () => {
    const { isolate } = await start(
      `export default { fetch() {
        return new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array(1)); } }));
      } };`,
      { timeoutMs: 300 },
    );
    const outcome = ok(await isolate.invoke("a", requestJson(), null, { stream: true }));
    const err = await readAll(outcome).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_FUNCTION_TIMEOUT" });
  });
});
