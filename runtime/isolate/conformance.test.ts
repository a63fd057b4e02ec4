import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IsolateProber, startProber } from "../../test/support/probe-isolate.ts";

/**
 * Web platform conformance of the in-isolate runtime. The web-platform-tests are not shipped by any
 * npm package we could use, so each group restates the assertions of the WPT file named above it
 * (https://github.com/web-platform-tests/wpt/blob/master/<path>) and runs them in a real isolate.
 */
const WPT = "https://github.com/web-platform-tests/wpt/blob/master/";

/**
 * URL inputs (and bases) on the edges the WHATWG URL parser has moved over the years (the themes of
 * url/resources/urltestdata.json): Windows drive letters and hosts in file URLs, IPv4 in all its
 * radixes, IPv6 compression and embedded IPv4, IDNA, percent-encoding sets, dot segments, opaque
 * paths. The oracle is Node's own URL (Ada), which passes the WPT URL suite.
 */
const URL_CASES: Array<[string, string?]> = [
  ["file:///C:/a/../.."],
  ["file:///C|/x"],
  ["file://localhost/a"],
  ["file://host/share/x"],
  ["file:c:\\foo\\bar", "file:///c:/x"],
  ["file://C:/x/../../y"],
  ["file:/C|/"],
  ["file:..", "file:///C:/a/b"],
  ["file://[::1]/x"],
  ["file://example.com./"],
  ["http://0x7f.1/"],
  ["http://127.1/"],
  ["http://0300.0250.0.1/"],
  ["http://4294967295/"],
  ["http://4294967296/"],
  ["http://1.2.3.4.5/"],
  ["http://1.2.3.09/"],
  ["http://foo.0x4/"],
  ["http://256.256.256.256/"],
  ["http://1.2.3.4./"],
  ["http://0x/"],
  ["http://[::127.0.0.1]/"],
  ["http://[0:0:0:0:0:ffff:1.2.3.4]/"],
  ["http://[1:0::]/"],
  ["http://[::1.2.3.]/"],
  ["http://[1::2::3]/"],
  ["http://[ffff::127.0.0.1]/"],
  ["http://fa\u00df.de/"],
  ["http://\u0130.com/"],
  ["http://\uff27\uff2f.com/"],
  ["http://%41.com/"],
  ["http://%ef%bc%85%ef%bc%94%ef%bc%91.com/"],
  ["http://ex ample.com/"],
  ["http://example.com/foo/%2e%2E/bar"],
  ["http://example.com/a/./b/%2e/c"],
  ["http:\\\\example.com\\a"],
  ["http://a@b@c/"],
  ["http://user:pa:ss@host/"],
  ["http://host:65536/"],
  ["http://host:0080/"],
  ["https://EXAMPLE.com:443/"],
  ["non-spec:/.//p"],
  ["non-spec:/..//p"],
  ["sc://\u00f1/"],
  ["sc://a b/"],
  ["data:text/plain,hi there"],
  ["http://example.com/?a=b c#d e"],
  ["http://example.com/\u0000x"],
  ["http://h/<>^`{|}"],
  ["http://h/?<>^`{|}"],
  ["http://h/#<>^`{|}"],
  ["http://h/?'"],
  ["foo://h/?'"],
  ["  http://example.com/\t\na  "],
  ["//x/y", "https://b/"],
  ["?q", "http://h/p?x#f"],
  ["..", "http://h/a/b/c"],
  ["/..//x", "non-spec:/a/b"],
  ["\\x", "http://h/a/b"],
  ["http:x", "http://h/a/"],
  ["foo://///x"],
  ["http://!\"$&'()*+,-.;=_`{}~/"],
];

/** URL and URLSearchParams API steps, run as written both in Node (the oracle) and in the isolate. */
const URL_API = `() => {
  const out = [URL.canParse("x:"), URL.parse("nope"), URL.parse("/a", "http://h/").href];
  const u = new URL("http://h/p?a=1&b=2&a=3");
  out.push(u.searchParams.size, u.searchParams.has("a", "3"), (u.searchParams.delete("a", "1"), u.search));
  const s = new URL("http://h:8080/");
  s.port = "99stuff"; out.push(s.href);
  s.protocol = "foo"; out.push(s.href);
  s.protocol = "https"; out.push(s.href);
  s.host = "x:1"; out.push(s.href);
  s.pathname = "a b/%2e%2e/c"; out.push(s.href);
  s.hash = "#x y"; s.search = "?q=é"; s.username = "u@"; s.password = "p:"; out.push(s.href);
  const f = new URL("file:///C:/x"); f.host = "h"; out.push(f.href);
  const n = new URL("non-spec:/p"); n.host = "h"; out.push(n.href);
  const sorted = new URLSearchParams("c=3&a=1&b=2&a=0"); sorted.sort();
  out.push(JSON.stringify(new URL("http://h/")), String(new URLSearchParams({ a: "1 2", b: "~*'()" })), new URLSearchParams("?x=%zz&y=+").get("y"), sorted.toString(),
    new URL("blob:https://a.b/uuid").origin, new URL("http://h:80/").origin, new URL("data:x,y").origin, Object.prototype.toString.call(new URL("http://h")), URL.name, URLSearchParams.name);
  return out;
}`;

const PROBES = String.raw`
const errorNameOf = (fn) => { try { fn(); return "no error"; } catch (e) { return e instanceof TypeError ? "TypeError" : e?.name ?? String(e); } };
const rejectionNameOf = async (promise) => { try { await promise; return "resolved"; } catch (e) { return e instanceof TypeError ? "TypeError" : e?.name ?? String(e); } };
const until = (check) => new Promise((resolve) => { const poll = () => (check() ? resolve() : setTimeout(poll, 1)); poll(); });

const probes = {
  // url/url-constructor.any.js (urltestdata.json), url/url-setters.any.js, url/urlsearchparams-*.any.js
  async url(request) {
    const cases = await request.json();
    return cases.map(([input, base]) => { try { return new URL(input, base); } catch (e) { return e instanceof TypeError ? "TypeError" : String(e); } }).map(String);
  },
  async urlApi() { return (${URL_API})(); },
  // fetch/api/headers/headers-basic.any.js, headers-errors.any.js, headers-normalize.any.js,
  // headers-record.any.js, header-setcookie.any.js
  async headersConstruct() {
    const fromRecord = new Headers({ A: "1", b: "2" });
    const fromSequence = new Headers([["A", "1"], ["a", "2"]]);
    const copy = new Headers(fromSequence);
    return [errorNameOf(() => new Headers(null)), [...new Headers()], [...new Headers(undefined)], [...fromRecord], [...fromSequence], [...copy],
      errorNameOf(() => new Headers([["name"]])), errorNameOf(() => new Headers([["a", "b", "c"]])), errorNameOf(() => new Headers(["ab"])),
      errorNameOf(() => new Headers({ [Symbol("s")]: "x" })), [...new Headers({ __proto__: { inherited: "no" }, own: "yes" })],
      Object.prototype.toString.call(fromRecord)];
  },
  async headersByteString() {
    const h = new Headers();
    h.append("x", null);
    h.append("y", undefined);
    h.set("z", 42);
    h.append("w", { toString: () => "obj" });
    return [[...h], errorNameOf(() => h.append("v", "\u0100")), errorNameOf(() => h.set("\u00e9", "x"))];
  },
  async headersErrors() {
    const h = new Headers();
    const badNames = ["", "a b", "a:b", "[", "é", "a\n"];
    const badValues = ["a\0b", "a\rb", "a\nb"];
    return [
      badNames.map((name) => [errorNameOf(() => new Headers([[name, "v"]])), errorNameOf(() => h.append(name, "v")), errorNameOf(() => h.set(name, "v")),
        errorNameOf(() => h.get(name)), errorNameOf(() => h.has(name)), errorNameOf(() => h.delete(name))]),
      badValues.map((value) => [errorNameOf(() => h.append("x", value)), errorNameOf(() => h.set("x", value)), errorNameOf(() => new Headers({ x: value }))]),
      [...h],
    ];
  },
  async headersNormalize() {
    const h = new Headers({ a: " \t value\t \r\n", b: "", c: "in  side" });
    h.append("d", "\n\nx\t");
    return [...h];
  },
  async headersCombineAndSort() {
    const h = new Headers([["B", "1"], ["a", "x"], ["b", "2"], ["A", "y"], ["C-", "z"]]);
    h.delete("B");
    return [[...h], h.get("a"), h.has("A"), h.get("b"), [...h.keys()], [...h.values()]];
  },
  async headersSetCookie() {
    const equal = new Headers([["set-cookie", "foo=bar"], ["Set-Cookie", "foo=bar"]]);
    const comma = new Headers({ "Set-Cookie": "a=1, b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT" });
    const mixed = new Headers([["set-cookie", "a=1"], ["x", "1"], ["set-cookie", "b=2"]]);
    mixed.set("set-cookie", "only");
    return [equal.getSetCookie(), [...equal], equal.get("set-cookie"), comma.getSetCookie(), mixed.getSetCookie(), new Headers().getSetCookie()];
  },
  async headersIterationWhileMutating() {
    const h = new Headers([["b", "2"], ["c", "3"]]);
    const seen = [];
    let mutated = false;
    for (const [name] of h) {
      seen.push(name);
      if (!mutated) { mutated = true; h.append("a", "1"); h.append("d", "4"); }
    }
    const forEach = [];
    h.forEach(function (value, name, target) { forEach.push([name, value, target === h, this.tag]); }, { tag: "this" });
    return [seen, forEach];
  },

  // fetch/api/response/response-consume-empty.any.js, fetch/api/request/request-consume-empty.any.js
  async nullBodyIsNeverUsed() {
    const res = new Response();
    const req = new Request("https://x.test/");
    return [res.body, await res.text(), res.bodyUsed, await res.text(), (await res.arrayBuffer()).byteLength, res.bodyUsed,
      await req.text(), req.bodyUsed, (await new Response(null).blob()).size];
  },
  async emptyBodyIsUsedOnce() {
    const res = new Response("");
    const consumed = new Response("abc");
    await consumed.text();
    return [res.body !== null, await res.text(), res.bodyUsed, await rejectionNameOf(res.text()), (await consumed.body.getReader().read()).done, consumed.bodyUsed];
  },
  // fetch/api/response/response-stream-disturbed-1.any.js ... -6.any.js, response-init-002.any.js
  async streamBodyDisturbedByItsReader() {
    const stream = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("abc")); c.close(); } });
    const res = new Response(stream);
    const same = res.body === stream;
    const reader = res.body.getReader();
    const chunk = await reader.read();
    const usedWhileLocked = res.bodyUsed;
    reader.releaseLock();
    return [same, new TextDecoder().decode(chunk.value), usedWhileLocked, res.bodyUsed, await rejectionNameOf(res.text()), errorNameOf(() => res.clone())];
  },
  async streamBodyDisturbedByCancel() {
    const res = new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array([1])); } }));
    await res.body.cancel();
    return [res.bodyUsed, await rejectionNameOf(res.arrayBuffer())];
  },
  async lockedBodyRejects() {
    const res = new Response("abc");
    res.body.getReader();
    return [res.bodyUsed, await rejectionNameOf(res.text())];
  },
  async requestBodyDisturbed(request) {
    const reader = request.body.getReader();
    await reader.read();
    reader.releaseLock();
    return [request.bodyUsed, await rejectionNameOf(request.text())];
  },

  // FileAPI/blob/Blob-constructor.any.js
  async blobConstructor() {
    const notSequences = [null, true, false, 0, 1, 1.5, "FAIL", new Date(), /re/, {}, { 0: "a", length: 1 }];
    const iterable = { *[Symbol.iterator]() { yield "a"; yield "b"; } };
    return [notSequences.map((parts) => errorNameOf(() => new Blob(parts))), new Blob().size, new Blob(undefined).size,
      await new Blob(iterable).text(), await new Blob([1, null, undefined, { toString: () => "o" }]).text(),
      new Blob([], { type: "A/B" }).type, new Blob([], { type: "a\u00e9" }).type, new Blob([], null).type,
      errorNameOf(() => new Blob([], "x")), Object.prototype.toString.call(new Blob())];
  },
  // FileAPI/file/File-constructor.any.js
  async fileConstructor() {
    const before = Date.now();
    const f = new File(["a", "bc"], "n.txt");
    const typed = new File([], "x", { type: "TEXT/Plain", lastModified: 42 });
    return [errorNameOf(() => new File()), errorNameOf(() => new File([])), errorNameOf(() => new File("bits", "n")),
      f.name, f.size, f.type, f.lastModified >= before && f.lastModified <= Date.now(), typed.type, typed.lastModified,
      new File([], "d", { lastModified: new Date(1000) }).lastModified, new File([], null).name, f instanceof Blob,
      Object.prototype.toString.call(f), await f.text()];
  },

  // dom/events/CustomEvent.html
  async customEvent() {
    const target = new EventTarget();
    const seen = [];
    target.addEventListener("hello", (e) => seen.push([e.type, e.detail, e instanceof Event, e.target === target]));
    target.dispatchEvent(new CustomEvent("hello", { detail: { n: 1 } }));
    const blank = new CustomEvent("x");
    const initialized = new CustomEvent("y");
    initialized.initCustomEvent("z", true, true, 7);
    const defaults = new CustomEvent("y");
    defaults.initCustomEvent("w");
    return [seen, blank.detail, [initialized.type, initialized.bubbles, initialized.cancelable, initialized.detail],
      [defaults.type, defaults.bubbles, defaults.cancelable, defaults.detail], errorNameOf(() => new CustomEvent()),
      Object.prototype.toString.call(blank), CustomEvent.name];
  },

  // dom/abort/event.any.js, dom/abort/AbortSignal.any.js
  async abortEvent() {
    const c = new AbortController();
    const s = c.signal;
    const seen = [];
    s.onabort = (e) => seen.push(["onabort", e.type, e.target === s, e.currentTarget === s, s.aborted, e.bubbles, e.cancelable]);
    s.addEventListener("abort", (e) => seen.push(["listener", e.target === s, e.currentTarget === s]));
    const reasonBefore = s.reason === undefined;
    c.abort();
    c.abort("ignored");
    const reason = s.reason;
    let thrown = null;
    try { s.throwIfAborted(); } catch (e) { thrown = e; }
    return [reasonBefore, "reason" in s, seen, reason instanceof DOMException, reason.name, reason === s.reason, thrown === reason,
      c.signal === c.signal, errorNameOf(() => new AbortSignal()), new AbortController().signal.throwIfAborted() ?? "no throw"];
  },
  async abortStatic() {
    const plain = AbortSignal.abort();
    const withReason = AbortSignal.abort("r");
    return [plain.aborted, plain.reason instanceof DOMException, plain.reason.name, withReason.reason, errorNameOf(() => AbortSignal.timeout(-1))];
  },
  // dom/abort/timeout.any.js
  async abortTimeout() {
    const signal = AbortSignal.timeout(5);
    const before = signal.aborted;
    let targeted = null;
    signal.addEventListener("abort", (e) => { targeted = e.target === signal; });
    await until(() => targeted !== null);
    return [before, signal.aborted, signal.reason instanceof DOMException, signal.reason.name, targeted];
  },
  // dom/abort/abort-signal-any.any.js
  async abortAny() {
    const a = new AbortController();
    const b = new AbortController();
    const any = AbortSignal.any([a.signal, b.signal]);
    const nested = AbortSignal.any([any]);
    const order = [];
    a.signal.addEventListener("abort", () => order.push("a"));
    any.addEventListener("abort", (e) => order.push("any:" + (e.target === any)));
    nested.addEventListener("abort", () => order.push("nested"));
    b.abort("b first");
    a.abort("a second");
    const already = AbortSignal.any([new AbortController().signal, AbortSignal.abort("pre")]);
    const empty = AbortSignal.any([]);
    return [any.aborted, any.reason, nested.reason, order, already.aborted, already.reason, empty.aborted, errorNameOf(() => AbortSignal.any([{}]))];
  },

  // Minified class names: WebIDL interface objects carry their interface name.
  async classNames() {
    return [AbortSignal.name, AbortController.name, Blob.name, File.name, Headers.name, Request.name, Response.name, Event.name, EventTarget.name,
      CustomEvent.name, ReadableStream.name, TextDecoder.name, performance.constructor.name];
  },

  // html/webappapis/microtask-queuing/queue-microtask.any.js, queue-microtask-exceptions.any.js
  async microtaskOrder() {
    const order = [];
    queueMicrotask(() => order.push("q1"));
    Promise.resolve().then(() => order.push("p1"));
    queueMicrotask(() => order.push("q2"));
    Promise.resolve().then(() => order.push("p2"));
    order.push("sync");
    await new Promise((resolve) => setTimeout(resolve, 0));
    return [order, errorNameOf(() => queueMicrotask()), errorNameOf(() => queueMicrotask("code")), queueMicrotask.length];
  },
  async microtaskThrows() {
    const order = [];
    queueMicrotask(() => { throw new Error("boom in microtask"); });
    queueMicrotask(() => order.push("after"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    return order;
  },

  // hr-time/basic.any.js, hr-time/timeOrigin.html, hr-time/idlharness.any.js
  async performance() {
    const seen = [];
    performance.addEventListener("x", (e) => seen.push(e.type));
    performance.dispatchEvent(new Event("x"));
    const json = performance.toJSON();
    const a = performance.now();
    const b = performance.now();
    return [performance instanceof EventTarget, seen, typeof json.timeOrigin, json.timeOrigin === performance.timeOrigin, b >= a,
      Math.abs(performance.timeOrigin + performance.now() - Date.now()) < 50, Object.prototype.toString.call(performance)];
  },

  // html/webappapis/structured-clone/structured-clone-battery-of-tests.js
  async structuredClone() {
    const cyclic = { name: "c" };
    cyclic.self = cyclic;
    const shared = { s: 1 };
    const c = structuredClone({ map: new Map([[1, { a: 1 }]]), set: new Set(["x"]), date: new Date(5), re: /a+/gi, u16: new Uint16Array([1, 2]),
      big: 10n, nested: [shared, shared], cyclic, boxed: new String("s"), sparse: [1, , 3], neg0: -0 });
    const err = structuredClone(new RangeError("bad"));
    const dataCloneOf = (value) => { try { structuredClone(value); return "cloned"; } catch (e) { return [e instanceof DOMException, e.name, e.code]; } };
    return [c.map.get(1).a, c.set.has("x"), c.date.getTime(), [c.re.source, c.re.flags], [c.u16.constructor.name, ...c.u16], typeof c.big,
      c.nested[0] === c.nested[1], c.cyclic.self === c.cyclic, c.boxed instanceof String, 1 in c.sparse, Object.is(c.neg0, -0),
      [err instanceof RangeError, err.name, err.message], dataCloneOf(() => 1), dataCloneOf(Symbol("s")), dataCloneOf({ f() {} })];
  },

  // encoding/textdecoder-fatal.any.js, textdecoder-byte-order-marks.any.js, api-basics.any.js, encodeInto.any.js
  async encoding() {
    const fatal = new TextDecoder("utf-8", { fatal: true });
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
    const into = new Uint8Array(4);
    const result = new TextEncoder().encodeInto("aé✓", into);
    return [errorNameOf(() => fatal.decode(new Uint8Array([0xff]))), errorNameOf(() => fatal.decode(new Uint8Array([0xc0, 0x80]))),
      new TextDecoder().decode(new Uint8Array([0xff, 0x61])), new TextDecoder().decode(bom), new TextDecoder("utf-8", { ignoreBOM: true }).decode(bom).length,
      new TextDecoder("utf-16le").decode(new Uint8Array([0xff, 0xfe, 0x61, 0x00])), new TextDecoder(" UTF8 ").encoding, [result.read, result.written, ...into],
      fatal.fatal, new TextEncoder().encoding, errorNameOf(() => new TextDecoder("no-such-label"))];
  },
  // streams/piping/pipe-through.any.js, encoding/streams/decode-utf8.any.js, streams/readable-streams/tee.any.js
  async streams() {
    const bytes = new TextEncoder().encode("héllo");
    const source = new ReadableStream({ start(c) { c.enqueue(bytes.subarray(0, 2)); c.enqueue(bytes.subarray(2)); c.close(); } });
    const text = [];
    for await (const chunk of source.pipeThrough(new TextDecoderStream())) text.push(chunk);
    const [left, right] = new ReadableStream({ start(c) { c.enqueue("t"); c.close(); } }).tee();
    const encoded = new ReadableStream({ start(c) { c.enqueue("ok"); c.close(); } }).pipeThrough(new TextEncoderStream());
    const out = await encoded.getReader().read();
    let thrown = null;
    try { new ReadableStream().pipeThrough({ readable: {}, writable: {} }); } catch (e) { thrown = e instanceof TypeError; }
    return [text.join(""), (await left.getReader().read()).value, (await right.getReader().read()).value, [...out.value], thrown,
      errorNameOf(() => new ReadableStream().getReader({ mode: "nope" }))];
  },
};
`;

describe.each([
  ["from a V8 snapshot", true],
  ["compiled from source", false],
])("web platform conformance inside the isolate, bootstrap %s (restated WPT assertions)", (_, snapshot) => {
  let prober: IsolateProber;
  beforeAll(async () => {
    // A CPU budget well above the 50 ms default: on a loaded 2-core machine one probe passed it once,
    // and the watchdog then disposed the isolate under every later probe.
    prober = await startProber(PROBES, { timeoutMs: 5_000, cpuMs: 2_000, snapshot });
  });
  afterAll(() => prober?.isolate.dispose());
  const probe = (name: string, body?: string) => prober.probe(name, body);

  describe(`Headers (${WPT}fetch/api/headers/)`, () => {
    it("constructs from nothing, records, sequences and Headers, and rejects null and malformed init", async () =>
      expect(await probe("headersConstruct")).toEqual([
        "TypeError",
        [],
        [],
        [
          ["a", "1"],
          ["b", "2"],
        ],
        [["a", "1, 2"]],
        [["a", "1, 2"]],
        "TypeError",
        "TypeError",
        "TypeError",
        "TypeError",
        [["own", "yes"]],
        "[object Headers]",
      ]));
    it("converts names and values with WebIDL ByteString rules (null becomes 'null', code points over U+00FF throw)", async () =>
      expect(await probe("headersByteString")).toEqual([
        [
          ["w", "obj"],
          ["x", "null"],
          ["y", "undefined"],
          ["z", "42"],
        ],
        "TypeError",
        "TypeError",
      ]));
    it("throws TypeError for invalid names in every method and for invalid values", async () => {
      const [names, values, left] = (await probe("headersErrors")) as [string[][], string[][], unknown[]];
      for (const row of names) expect(row).toEqual(Array(6).fill("TypeError"));
      for (const row of values) expect(row).toEqual(Array(3).fill("TypeError"));
      expect(left).toEqual([]);
    });
    it("strips leading and trailing HTTP whitespace from values", async () =>
      expect(await probe("headersNormalize")).toEqual([
        ["a", "value"],
        ["b", ""],
        ["c", "in  side"],
        ["d", "x"],
      ]));
    it("combines values with ', ', sorts lowercase names, and deletes every value of a name", async () =>
      expect(await probe("headersCombineAndSort")).toEqual([
        [
          ["a", "x, y"],
          ["c-", "z"],
        ],
        "x, y",
        true,
        null,
        ["a", "c-"],
        ["x, y", "z"],
      ]));
    it("getSetCookie returns each Set-Cookie separately, equal ones too, never split on commas", async () =>
      expect(await probe("headersSetCookie")).toEqual([
        ["foo=bar", "foo=bar"],
        [
          ["set-cookie", "foo=bar"],
          ["set-cookie", "foo=bar"],
        ],
        "foo=bar, foo=bar",
        ["a=1, b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT"],
        ["only"],
        [],
      ]));
    it("iteration reads the live sorted list by index (a header sorted before the current one repeats it); forEach passes value, name, headers and thisArg", async () =>
      expect(await probe("headersIterationWhileMutating")).toEqual([
        ["b", "b", "c", "d"],
        [
          ["a", "1", true, "this"],
          ["b", "2", true, "this"],
          ["c", "3", true, "this"],
          ["d", "4", true, "this"],
        ],
      ]));
  });

  describe(`URL (${WPT}url/)`, () => {
    it("parses the WPT URL themes exactly as Node's URL (Ada) does", async () => {
      const expected = URL_CASES.map(([input, base]) => {
        try {
          return String(new URL(input, base));
        } catch (err) {
          return err instanceof TypeError ? "TypeError" : String(err);
        }
      });
      expect(await probe("url", JSON.stringify(URL_CASES))).toEqual(expected);
    });
    it("URL setters, canParse/parse and URLSearchParams behave as in Node", async () => {
      const expected = new Function(`return (${URL_API})();`)() as unknown[];
      expect(await probe("urlApi")).toEqual(expected);
    });
  });

  describe(`Body state (${WPT}fetch/api/response/response-consume-empty.any.js, response-stream-disturbed-*.any.js)`, () => {
    it("reading a null body gives empty results, any number of times, and bodyUsed stays false", async () =>
      expect(await probe("nullBodyIsNeverUsed")).toEqual([null, "", false, "", 0, false, "", false, 0]));
    it("an empty (non-null) body is used by one read; the second rejects with TypeError; a consumed body's stream is ended", async () =>
      expect(await probe("emptyBodyIsUsedOnce")).toEqual([true, "", true, "TypeError", true, true]));
    it("reading the stream given to new Response(stream) disturbs the body: bodyUsed, then text() and clone() fail", async () =>
      expect(await probe("streamBodyDisturbedByItsReader")).toEqual([
        true,
        "abc",
        true,
        true,
        "TypeError",
        "TypeError",
      ]));
    it("cancelling the body stream disturbs it", async () =>
      expect(await probe("streamBodyDisturbedByCancel")).toEqual([true, "TypeError"]));
    it("a locked but unread body is not used, yet cannot be consumed", async () =>
      expect(await probe("lockedBodyRejects")).toEqual([false, "TypeError"]));
    it("an incoming request body read through request.body is used", async () =>
      expect(await probe("requestBodyDisturbed", "payload")).toEqual([true, "TypeError"]));
  });

  describe(`Blob and File (${WPT}FileAPI/blob/Blob-constructor.any.js, FileAPI/file/File-constructor.any.js)`, () => {
    it("Blob takes a sequence (or nothing) of parts, stringifies other parts and lowercases ASCII types", async () =>
      expect(await probe("blobConstructor")).toEqual([
        Array(11).fill("TypeError"),
        0,
        0,
        "ab",
        "1nullundefinedo",
        "a/b",
        "",
        "",
        "TypeError",
        "[object Blob]",
      ]));
    it("File needs bits and a name; lastModified defaults to now; type is lowercased", async () =>
      expect(await probe("fileConstructor")).toEqual([
        "TypeError",
        "TypeError",
        "TypeError",
        "n.txt",
        3,
        "",
        true,
        "text/plain",
        42,
        1000,
        "null",
        true,
        "[object File]",
        "abc",
      ]));
  });

  it(`CustomEvent carries detail and supports initCustomEvent (${WPT}dom/events/CustomEvent.html)`, async () =>
    expect(await probe("customEvent")).toEqual([
      [["hello", { n: 1 }, true, true]],
      null,
      ["z", true, true, 7],
      ["w", false, false, null],
      "TypeError",
      "[object CustomEvent]",
      "CustomEvent",
    ]));

  describe(`AbortController and AbortSignal (${WPT}dom/abort/)`, () => {
    it("the abort event targets the signal, onabort runs first, and reason defaults to an AbortError DOMException", async () =>
      expect(await probe("abortEvent")).toEqual([
        true,
        true,
        [
          ["onabort", "abort", true, true, true, false, false],
          ["listener", true, true],
        ],
        true,
        "AbortError",
        true,
        true,
        true,
        "TypeError",
        "no throw",
      ]));
    it("AbortSignal.abort() is already aborted; timeout() rejects negative delays", async () =>
      expect(await probe("abortStatic")).toEqual([true, true, "AbortError", "r", "TypeError"]));
    it("AbortSignal.timeout() aborts with a TimeoutError DOMException", async () =>
      expect(await probe("abortTimeout")).toEqual([false, true, true, "TimeoutError", true]));
    it("AbortSignal.any() follows the first source to abort, also through another any(), after the source's listeners", async () =>
      expect(await probe("abortAny")).toEqual([
        true,
        "b first",
        "b first",
        ["any:true", "nested", "a"],
        true,
        "pre",
        false,
        "TypeError",
      ]));
  });

  it("interface objects keep their names although the bootstrap is minified", async () =>
    expect(await probe("classNames")).toEqual([
      "AbortSignal",
      "AbortController",
      "Blob",
      "File",
      "Headers",
      "Request",
      "Response",
      "Event",
      "EventTarget",
      "CustomEvent",
      "ReadableStream",
      "TextDecoder",
      "Performance",
    ]));

  describe(`queueMicrotask (${WPT}html/webappapis/microtask-queuing/)`, () => {
    it("queues a microtask that interleaves with promise reactions in FIFO order", async () =>
      expect(await probe("microtaskOrder")).toEqual([["sync", "q1", "p1", "q2", "p2"], "TypeError", "TypeError", 1]));
    it("a callback that throws is reported on the console and does not stop the next microtask", async () => {
      expect(await probe("microtaskThrows")).toEqual(["after"]);
      const reported = prober.console.filter((line) => line.message.includes("boom in microtask"));
      expect(reported).toEqual([expect.objectContaining({ level: "error" })]);
      expect(reported[0]?.message).toMatch(/^Uncaught error in queueMicrotask callback:/);
    });
  });

  it(`performance is an EventTarget with now(), timeOrigin and toJSON() (${WPT}hr-time/)`, async () =>
    expect(await probe("performance")).toEqual([true, ["x"], "number", true, true, true, "[object Performance]"]));

  it(`structuredClone round-trips the battery's types and throws DataCloneError for functions (${WPT}html/webappapis/structured-clone/structured-clone-battery-of-tests.js)`, async () =>
    expect(await probe("structuredClone")).toEqual([
      1,
      true,
      5,
      ["a+", "gi"],
      ["Uint16Array", 1, 2],
      "bigint",
      true,
      true,
      true,
      false,
      true,
      [true, "RangeError", "bad"],
      [true, "DataCloneError", 25],
      [true, "DataCloneError", 25],
      [true, "DataCloneError", 25],
    ]));

  it(`TextDecoder fatal mode, BOM handling, labels and TextEncoder.encodeInto (${WPT}encoding/)`, async () =>
    expect(await probe("encoding")).toEqual([
      "TypeError",
      "TypeError",
      "\ufffda",
      "a",
      2,
      "a",
      "utf-8",
      [2, 3, 0x61, 0xc3, 0xa9, 0],
      true,
      "utf-8",
      "RangeError",
    ]));

  it(`streams: pipeThrough text decoding and encoding, tee, argument checks (${WPT}streams/piping/pipe-through.any.js)`, async () =>
    expect(await probe("streams")).toEqual(["héllo", "t", "t", [111, 107], true, "TypeError"]));
});
