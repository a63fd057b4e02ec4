import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isolateFor, requestJson, text } from "../../test/support/isolate.ts";
import type { FunctionIsolate } from "./function-isolate.ts";

/**
 * The web API inside the isolate, exercised from function code. Each probe is a small async function
 * whose result is compared with what the WHATWG/W3C specs (and browsers) give.
 */
const PROBES = `
const probes = {
  async base64() { return [btoa("hello"), atob("aGVsbG8=")]; },
  async structuredClone() {
    const src = { d: new Date(0), m: new Map([[1, "a"]]), u: new Uint8Array([1, 2]) };
    const c = structuredClone(src);
    return [c !== src, c.d instanceof Date, c.m.get(1), [...c.u]];
  },
  async microtask() { const order = []; queueMicrotask(() => order.push("micro")); order.push("sync"); await null; return order; },
  async timers() {
    const order = [];
    await new Promise((resolve) => {
      setTimeout((x) => order.push("t200:" + x), 200, "arg");
      const cancelled = setTimeout(() => order.push("never"), 5);
      clearTimeout(cancelled);
      let n = 0;
      const iv = setInterval(() => { n++; order.push("iv" + n); if (n === 3) { clearInterval(iv); setTimeout(resolve, 250); } }, 1);
    });
    return order;
  },
  async abort() {
    const c = new AbortController();
    let fired = 0;
    c.signal.addEventListener("abort", () => fired++);
    c.abort("why");
    const t = AbortSignal.timeout(5);
    await new Promise((r) => setTimeout(r, 30));
    const any = AbortSignal.any([new AbortController().signal, AbortSignal.abort("first")]);
    let threw = null;
    try { c.signal.throwIfAborted(); } catch (e) { threw = e; }
    return [c.signal.aborted, c.signal.reason, fired, t.aborted, t.reason.name, any.aborted, any.reason, threw];
  },
  async events() {
    const target = new EventTarget();
    const seen = [];
    target.addEventListener("ping", (e) => seen.push(e.type + ":" + (e instanceof Event)));
    target.dispatchEvent(new Event("ping"));
    return seen;
  },
  async domException() { const e = new DOMException("nope", "AbortError"); return [e.name, e.message, e.code, e instanceof Error]; },
  async blob() {
    const b = new Blob(["ab", new Uint8Array([99]), new Blob(["d"])], { type: "Text/Plain" });
    const f = new File(["x"], "a.txt", { type: "text/plain" });
    return [b.size, b.type, await b.text(), await b.slice(1, 3).text(), f.name, f.size, Object.prototype.toString.call(f)];
  },
  async streams() {
    const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); } });
    const writer = upper.writable.getWriter();
    writer.write("a"); writer.write("b"); writer.close();
    const out = [];
    for (const reader = upper.readable.getReader(); ; ) { const { done, value } = await reader.read(); if (done) break; out.push(value); }
    const sink = [];
    const ws = new WritableStream({ write(c) { sink.push(c); } });
    await new ReadableStream({ start(c) { c.enqueue(1); c.enqueue(2); c.close(); } }).pipeTo(ws);
    return [out, sink];
  },
  async streamingDecode() {
    const bytes = new TextEncoder().encode("é✓");
    const d = new TextDecoder();
    return d.decode(bytes.subarray(0, 1), { stream: true }) + d.decode(bytes.subarray(1, 4), { stream: true }) + d.decode(bytes.subarray(4));
  },
  async crypto() {
    const a = crypto.getRandomValues(new Uint8Array(32));
    const b = crypto.getRandomValues(new Uint32Array(4));
    const uuid = crypto.randomUUID();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc")));
    const hex = [...digest].map((x) => x.toString(16).padStart(2, "0")).join("");
    let tooBig = null;
    try { crypto.getRandomValues(new Uint8Array(65537)); } catch (e) { tooBig = e.name; }
    return [a.some((x) => x !== 0), b.length, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid), uuid !== crypto.randomUUID(), hex, tooBig];
  },
  async performance() { const a = performance.now(); await new Promise((r) => setTimeout(r, 15)); return [typeof a, performance.now() - a >= 10, performance.timeOrigin > 0]; },
  async headers() {
    const h = new Headers([["Set-Cookie", "a=1"], ["set-cookie", "b=2"], ["X-B", "2"], ["x-a", "1"]]);
    return [h.getSetCookie(), [...h.keys()], h.get("x-b")];
  },
  async bodies(request) {
    const streamed = new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("he")); c.enqueue(new TextEncoder().encode("llo")); c.close(); } }));
    const original = new Response("twice");
    const copy = original.clone();
    const req = new Request("https://x.test/a", { method: "POST", body: "payload" });
    const reqCopy = req.clone();
    const reader = (await request.body).getReader();
    const first = await reader.read();
    return [await streamed.text(), await original.text(), await copy.text(), await req.text(), await reqCopy.text(), req.bodyUsed,
      new TextDecoder().decode(first.value), (await new Response(new Blob(["blob"], { type: "a/b" })).blob()).type, Response.error().type];
  },
};
export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    return Response.json(await probes[name](request));
  },
};`;

describe.each([
  ["from a V8 snapshot", true],
  ["compiled from source (the cached-data fallback)", false],
])("web API inside the isolate, bootstrap %s", (_, snapshot) => {
  let fn: FunctionIsolate;
  beforeAll(async () => {
    fn = (await isolateFor(PROBES, { timeoutMs: 5_000, snapshot })).isolate;
  });
  afterAll(() => fn?.dispose());

  async function probe(name: string, body?: string): Promise<unknown> {
    const out = await fn.invoke(
      name,
      requestJson(`http://fn.test/${name}`, body ? "POST" : "GET"),
      body ? new TextEncoder().encode(body) : null,
    );
    if (!out.ok) throw new Error(`${name}: ${out.code} ${out.message} ${out.detail?.stack ?? ""}`);
    return JSON.parse(text(out.body));
  }

  it("atob/btoa", async () => expect(await probe("base64")).toEqual(["aGVsbG8=", "hello"]));
  it("structuredClone keeps Dates, Maps and typed arrays", async () =>
    expect(await probe("structuredClone")).toEqual([true, true, "a", [1, 2]]));
  it("queueMicrotask runs after the synchronous code", async () =>
    expect(await probe("microtask")).toEqual(["sync", "micro"]));
  it("setTimeout (with arguments), clearTimeout, setInterval and clearInterval", async () =>
    expect(await probe("timers")).toEqual(["iv1", "iv2", "iv3", "t200:arg"]));
  it("AbortController, AbortSignal.timeout/any/abort and throwIfAborted", async () =>
    expect(await probe("abort")).toEqual([true, "why", 1, true, "TimeoutError", true, "first", "why"]));
  it("Event and EventTarget", async () => expect(await probe("events")).toEqual(["ping:true"]));
  it("DOMException", async () => expect(await probe("domException")).toEqual(["AbortError", "nope", 20, true]));
  it("Blob and File", async () =>
    expect(await probe("blob")).toEqual([4, "text/plain", "abcd", "bc", "a.txt", 1, "[object File]"]));
  it("ReadableStream, WritableStream, TransformStream and pipeTo", async () =>
    expect(await probe("streams")).toEqual([
      ["A", "B"],
      [1, 2],
    ]));
  it("TextDecoder decodes split multi-byte characters in streaming mode", async () =>
    expect(await probe("streamingDecode")).toBe("é✓"));
  it("crypto.getRandomValues, randomUUID and subtle.digest", async () =>
    expect(await probe("crypto")).toEqual([
      true,
      4,
      true,
      true,
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "QuotaExceededError",
    ]));
  it("performance.now", async () => expect(await probe("performance")).toEqual(["number", true, true]));
  it("Headers: getSetCookie, sorted lowercase keys", async () =>
    // Per the Fetch spec, iteration yields each Set-Cookie value as its own entry.
    expect(await probe("headers")).toEqual([["a=1", "b=2"], ["set-cookie", "set-cookie", "x-a", "x-b"], "2"]));
  it("bodies as streams: stream responses, clone, request.body, Blob bodies, Response.error", async () =>
    expect(await probe("bodies", "incoming")).toEqual([
      "hello",
      "twice",
      "twice",
      "payload",
      "payload",
      true,
      "incoming",
      "a/b",
      "error",
    ]));
});

describe("header values are normalized in linear time", () => {
  it("trims a client-sized value with 200,000 spaces inside within a 50 ms CPU budget", async () => {
    // A regex trim (/^[\t\n\r ]+|[\t\n\r ]+$/g) retries at every char of an inner run: seconds here.
    const { isolate } = await isolateFor(
      `export default { fetch() {
        const value = "a" + " ".repeat(200000) + "b";
        const headers = new Headers([["x-long", "\\t " + value + " \\t"]]);
        return new Response(String(headers.get("x-long").length));
      } };`,
      { cpuMs: 50 },
    );
    try {
      const out = await isolate.invoke("ws", requestJson(), null);
      expect(out.ok, JSON.stringify(out)).toBe(true);
      if (out.ok) expect(text(out.body)).toBe("200002");
    } finally {
      isolate.dispose();
    }
  });
});
