import { createHash } from "node:crypto";
import { FormData as UndiciFormData, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InProcessCluster, startInProcessCluster } from "../../test/support/in-process.ts";
import { isolateFor, requestJson, text } from "../../test/support/isolate.ts";
import type { FunctionIsolate } from "./function-isolate.ts";

/**
 * FormData (XHR Standard), body.formData() and FormData bodies (Fetch Standard) inside a real
 * isolate. Each probe is function code; its result is compared with what the specs (and undici,
 * Node's fetch) give.
 */
const PROBES = `
const enc = new TextEncoder();
const describe = async (value) => typeof value === "string" ? value
  : { file: value.name, type: value.type, size: value.size, text: await value.text(), isFile: value instanceof File };
const dump = async (form) => { const out = []; for (const [k, v] of form) out.push([k, await describe(v)]); return out; };
const typeErrorOf = (fn) => { try { fn(); return "no error"; } catch (e) { return e instanceof TypeError ? "TypeError: " + e.message : String(e); } };
const rejectionOf = async (promise) => { try { await promise; return "no error"; } catch (e) { return (e instanceof TypeError ? "TypeError: " : "") + e.message; } };
const probes = {
  async api() {
    const fd = new FormData();
    fd.append("a", "1");
    fd.append("b", new Blob(["bee"], { type: "text/x-b" }));
    fd.append("a", 2);
    fd.append("c", new Blob(["sea"]), "c.txt");
    const file = new File(["eff"], "f.bin", { type: "application/x-f", lastModified: 42 });
    fd.append("f", file);
    fd.append("g", file, "renamed.bin");
    const before = [fd.get("a"), fd.getAll("a"), fd.has("c"), fd.has("zz"), fd.get("zz"), fd.get("f") === file];
    const renamed = fd.get("g");
    const kept = [renamed !== file, renamed.name, renamed.lastModified, renamed.type];
    fd.set("a", "only");
    const afterSet = [...fd.keys()];
    fd.delete("b");
    const seen = [];
    fd.forEach(function (value, key, form) { seen.push([key, typeof value, form === fd, this.tag]); }, { tag: "this" });
    return [before, kept, afterSet, [...fd.keys()], seen, await dump(fd), Object.prototype.toString.call(fd)];
  },
  async liveIteration() {
    const fd = new FormData();
    fd.append("x", "1");
    const seen = [];
    for (const [k] of fd) { seen.push(k); if (seen.length < 3) fd.append("y" + seen.length, "v"); }
    return seen;
  },
  async conversions() {
    const fd = new FormData();
    fd.append("lone\\uD800", "v\\uDC00");
    fd.set(1, null);
    return [...fd.entries()];
  },
  async badArguments() {
    return [
      typeErrorOf(() => new FormData({})),
      typeErrorOf(() => new FormData().append("a")),
      typeErrorOf(() => new FormData().append("a", "string", "name.txt")),
      typeErrorOf(() => new FormData().set("a", Symbol("s"))),
      typeErrorOf(() => new FormData().get()),
      typeErrorOf(() => new FormData().forEach(null)),
    ];
  },
  async roundTrip() {
    const fd = new FormData();
    fd.append("text", "line1\\nline2\\rline3");
    fd.append("quote\\"d", "é✓");
    fd.append("bytes", new Blob([new Uint8Array([0, 13, 10, 45, 45, 255])]), "raw.bin");
    fd.append("typed", new File(["<b>hi</b>"], "page.html", { type: "text/html" }));
    const res = new Response(fd);
    const contentType = res.headers.get("content-type");
    const wire = await res.clone().text();
    const back = await res.formData();
    const bytes = new Uint8Array(await back.get("bytes").arrayBuffer());
    const req = new Request("https://x.test/", { method: "POST", body: fd });
    const viaRequest = await req.formData();
    return [/^multipart\\/form-data; boundary=[-\\w]+$/.test(contentType), wire.includes('name="quote%22d"'),
      wire.includes("line1\\r\\nline2\\r\\nline3"), await dump(back), [...bytes], req.headers.get("content-type").startsWith("multipart/form-data; boundary="),
      [...viaRequest.keys()]];
  },
  async explicitContentTypeWins() {
    const fd = new FormData();
    fd.append("a", "1");
    const res = new Response(fd, { headers: { "content-type": "multipart/form-data; boundary=mine" } });
    return [res.headers.get("content-type"), await rejectionOf(res.formData())];
  },
  async serializeExact() {
    const fd = new FormData();
    fd.append("a\\nb", "c\\rd");
    fd.append('q"uote', new File(["x"], "C:\\\\dir\\\\f\\n.txt", { type: "text/plain" }));
    fd.append("blob", new Blob(["y"]));
    const res = new Response(fd);
    const contentType = res.headers.get("content-type");
    const empty = new Response(new FormData());
    return [contentType, await res.text(), empty.headers.get("content-type"), await empty.text()];
  },
  async fileMetadata(request) {
    const file = (await request.formData()).get("f");
    return [file.name, file.type, file.lastModified];
  },
  async parse(request) {
    const form = await request.formData();
    return [await dump(form), request.bodyUsed, await rejectionOf(request.formData())];
  },
  async parseError(request) {
    const started = Date.now();
    const error = await rejectionOf(request.formData());
    return [error, Date.now() - started];
  },
};
export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    return Response.json(await probes[name](request));
  },
};`;

type Body = string | Uint8Array;

function multipart(boundary: string, parts: string[], closing = `--${boundary}--\r\n`): string {
  return parts.map((part) => `--${boundary}\r\n${part}\r\n`).join("") + closing;
}

describe.each([
  ["from a V8 snapshot", true],
  ["compiled from source", false],
])("FormData inside the isolate, bootstrap %s", (_, snapshot) => {
  let fn: FunctionIsolate;
  beforeAll(async () => {
    fn = (await isolateFor(PROBES, { timeoutMs: 10_000, cpuMs: 5_000, snapshot })).isolate;
  });
  afterAll(() => fn?.dispose());

  async function probe(name: string, body?: Body, contentType?: string, isolate = fn): Promise<unknown> {
    const headers: Array<[string, string]> = contentType ? [["content-type", contentType]] : [];
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : (body ?? null);
    const out = await isolate.invoke(
      name,
      requestJson(`http://fn.test/${name}`, body ? "POST" : "GET", headers),
      bytes,
    );
    if (!out.ok) throw new Error(`${name}: ${out.code} ${out.message} ${out.detail?.stack ?? ""}`);
    return JSON.parse(text(out.body));
  }

  it("append, get, getAll, has, set, delete, forEach and iteration keep order, Blobs become Files", async () => {
    const file = (name: string, type: string, content: string) => ({
      file: name,
      type,
      size: content.length,
      text: content,
      isFile: true,
    });
    expect(await probe("api")).toEqual([
      ["1", ["1", "2"], true, false, null, true],
      [true, "renamed.bin", 42, "application/x-f"],
      ["a", "b", "c", "f", "g"],
      ["a", "c", "f", "g"],
      [
        ["a", "string", true, "this"],
        ["c", "object", true, "this"],
        ["f", "object", true, "this"],
        ["g", "object", true, "this"],
      ],
      [
        ["a", "only"],
        ["c", file("c.txt", "", "sea")],
        ["f", file("f.bin", "application/x-f", "eff")],
        ["g", file("renamed.bin", "application/x-f", "eff")],
      ],
      "[object FormData]",
    ]);
  });

  it("iteration is live: entries appended during a loop are visited", async () =>
    expect(await probe("liveIteration")).toEqual(["x", "y1", "y2"]));

  it("names and values convert as USVStrings (lone surrogates become U+FFFD)", async () =>
    expect(await probe("conversions")).toEqual([
      ["lone\uFFFD", "v\uFFFD"],
      ["1", "null"],
    ]));

  it("bad arguments are TypeErrors that say what was wrong", async () =>
    expect(await probe("badArguments")).toEqual([
      "TypeError: FormData: a form element is not supported here; build the entries with append()",
      "TypeError: FormData.append: 2 arguments required, but only 1 present",
      "TypeError: FormData.append: parameter 2 is not of type 'Blob'",
      "TypeError: Cannot convert a Symbol value to a string",
      "TypeError: FormData.get: 1 arguments required, but only 0 present",
      "TypeError: FormData.forEach: the callback is not a function",
    ]));

  it("a FormData body serialises to multipart/form-data and parses back (Response and Request)", async () =>
    expect(await probe("roundTrip")).toEqual([
      true,
      true,
      true,
      [
        ["text", "line1\r\nline2\r\nline3"],
        ["quote%22d", "é✓"],
        [
          "bytes",
          { file: "raw.bin", type: "application/octet-stream", size: 6, text: "\u0000\r\n--\uFFFD", isFile: true },
        ],
        ["typed", { file: "page.html", type: "text/html", size: 9, text: "<b>hi</b>", isFile: true }],
      ],
      [0, 13, 10, 45, 45, 255],
      true,
      ["text", "quote%22d", "bytes", "typed"],
    ]));

  it("an explicit Content-Type header is kept, and a wrong boundary then fails to parse", async () => {
    const [contentType, error] = (await probe("explicitContentTypeWins")) as [string, string];
    expect(contentType).toBe("multipart/form-data; boundary=mine");
    expect(error).toMatch(/^TypeError: Could not parse the body as FormData: the body does not start with --boundary$/);
  });

  it("parses multipart/form-data from a browser-shaped body: fields, files, binary, and case-insensitive Content-Type", async () => {
    const binary = new Uint8Array(256).map((_, i) => i);
    const head = new TextEncoder().encode(
      "--XyZ\r\n" +
        'Content-Disposition: form-data; name="title"\r\n\r\nHello, wörld\r\n' +
        "--XyZ\r\n" +
        'Content-Disposition: form-data; name="upload"; filename="all-bytes.bin"\r\n' +
        "Content-Type: application/octet-stream\r\n\r\n",
    );
    const tail = new TextEncoder().encode(
      "\r\n--XyZ\r\n" +
        'Content-Disposition: form-data; name="note"; filename="note.txt"\r\n\r\nno type given\r\n' +
        "--XyZ\r\n" +
        'Content-Disposition: form-data; name="empty"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n\r\n' +
        "--XyZ\r\n" +
        'Content-Disposition: form-data; name="bad-utf8"\r\n\r\n\xff\r\n' +
        "--XyZ--\r\n",
    );
    // "\xff" above is encoded as UTF-8 (c3 bf); put a raw 0xff byte there instead.
    const tailBytes = Uint8Array.from(
      [...tail].flatMap((b, i, all) =>
        b === 0xc3 && all[i + 1] === 0xbf ? [0xff] : b === 0xbf && all[i - 1] === 0xc3 ? [] : [b],
      ),
    );
    const body = new Uint8Array([...head, ...binary, ...tailBytes]);
    const [entries, bodyUsed, again] = (await probe("parse", body, 'Multipart/Form-Data; BOUNDARY="XyZ"')) as [
      Array<[string, unknown]>,
      boolean,
      string,
    ];
    expect(entries.map(([name]) => name)).toEqual(["title", "upload", "note", "empty", "bad-utf8"]);
    expect(entries[0]).toEqual(["title", "Hello, wörld"]);
    expect(entries[1]?.[1]).toMatchObject({ file: "all-bytes.bin", type: "application/octet-stream", size: 256 });
    // A file part without a Content-Type is text/plain (the multipart/form-data parser draft; undici agrees).
    expect(entries[2]).toEqual([
      "note",
      { file: "note.txt", type: "text/plain", size: 13, text: "no type given", isFile: true },
    ]);
    expect(entries[3]).toEqual([
      "empty",
      { file: "", type: "application/octet-stream", size: 0, text: "", isFile: true },
    ]);
    expect(entries[4]).toEqual(["bad-utf8", "\uFFFD"]);
    expect(bodyUsed).toBe(true);
    expect(again).toBe("TypeError: Body has already been used");
  });

  it("serialises as the HTML Standard says: CRLF newlines, %-escaped quotes and newlines, a fresh 128-bit boundary", async () => {
    const [contentType, wire, emptyType, emptyWire] = (await probe("serializeExact")) as string[];
    const boundary = /^multipart\/form-data; boundary=(----HearthFormBoundary[0-9a-f]{32})$/.exec(
      contentType ?? "",
    )?.[1];
    expect(boundary).toBeDefined();
    expect(wire).toBe(
      [
        `--${boundary}`,
        'Content-Disposition: form-data; name="a%0D%0Ab"',
        "",
        "c\r\nd",
        `--${boundary}`,
        'Content-Disposition: form-data; name="q%22uote"; filename="C:\\dir\\f%0A.txt"',
        "Content-Type: text/plain",
        "",
        "x",
        `--${boundary}`,
        'Content-Disposition: form-data; name="blob"; filename="blob"',
        "Content-Type: application/octet-stream",
        "",
        "y",
        `--${boundary}--`,
        "",
      ].join("\r\n"),
    );
    const emptyBoundary = emptyType?.slice("multipart/form-data; boundary=".length);
    expect(emptyBoundary).not.toBe(boundary);
    expect(emptyWire).toBe(`--${emptyBoundary}--\r\n`);
  });

  it("a parsed file keeps its name (backslashes too), takes its type from the last valid Content-Type, and has lastModified 0", async () => {
    const body = multipart("b", [
      'Content-Disposition: form-data; name="f"; filename="C:\\dir\\a.txt"\r\nContent-Type: text/html\r\nContent-Type: TEXT/Plain;;charset="utf-8"\r\n\r\ncontent',
    ]);
    expect(await probe("fileMetadata", body, "multipart/form-data; boundary=b")).toEqual([
      "C:\\dir\\a.txt",
      "text/plain;charset=utf-8",
      0,
    ]);
  });

  it.each([
    [
      "transport padding after delimiters, an epilogue, unquoted names, and padded header names",
      `--b \t\r\n Content-Disposition \t: form-data; name=token\r\n\r\nv\r\n--b-- \r\nepilogue --b\r\n`,
      "multipart/form-data; boundary=b",
      [["token", "v"]],
    ],
    [
      "invalid UTF-8 in a name and a value, as U+FFFD",
      // One char per byte, so "\xff" is the byte 0xff: not UTF-8.
      Uint8Array.from(`--b\r\nContent-Disposition: form-data; name="n\xff"\r\n\r\nv\xff\r\n--b--`, (c) =>
        c.charCodeAt(0),
      ),
      "multipart/form-data; boundary=b",
      [["n\uFFFD", "v\uFFFD"]],
    ],
    [
      "a quoted, non-ASCII boundary, matched as UTF-8",
      `--b\u00e9(x)\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--b\u00e9(x)--`,
      'multipart/form-data; boundary="b\u00e9(x)"',
      [["a", "v"]],
    ],
    [
      "percent sequences, left as they are",
      multipart("b", ['Content-Disposition: form-data; name="a%22b%0A"\r\n\r\nv']),
      "multipart/form-data; boundary=b",
      [["a%22b%0A", "v"]],
    ],
  ])("parses %s", async (_name, body, contentType, expected) => {
    const [entries] = (await probe("parse", body, contentType)) as [unknown];
    expect(entries).toEqual(expected);
  });

  it("parses application/x-www-form-urlencoded", async () =>
    expect(
      await probe("parse", "a=1&b=%20x+y&a=%E2%9C%93&flag", "application/x-www-form-urlencoded;charset=UTF-8"),
    ).toEqual([
      [
        ["a", "1"],
        ["b", " x y"],
        ["a", "✓"],
        ["flag", ""],
      ],
      true,
      "TypeError: Body has already been used",
    ]));

  it.each([
    ["another content type", "a=1", "text/plain", /is neither multipart\/form-data nor application/],
    ["no content type", "a=1", undefined, /the body has no Content-Type/],
    ["an unparsable content type", "a=1", "multipart", /is neither multipart\/form-data/],
    ["multipart without a boundary", "--x--\r\n", "multipart/form-data", /without a boundary parameter/],
    ["an empty multipart body", "", "multipart/form-data; boundary=x", /does not start with --boundary/],
    [
      "a body that does not start with the boundary",
      "junk",
      "multipart/form-data; boundary=x",
      /does not start with --boundary/,
    ],
    [
      "a boundary never closed",
      `--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n${"v".repeat(100_000)}`,
      "multipart/form-data; boundary=x",
      /the body ends before its close delimiter/,
    ],
    [
      "a part without a name",
      multipart("x", ["Content-Disposition: form-data\r\n\r\nv"]),
      "multipart/form-data; boundary=x",
      /a part has no name/,
    ],
    [
      "part headers over 8 KiB",
      multipart("x", [`Content-Disposition: form-data; name="a"\r\nX-Pad: ${"p".repeat(9 * 1024)}\r\n\r\nv`]),
      "multipart/form-data; boundary=x",
      /a part's headers are over 8192 bytes/,
    ],
    [
      "part headers that never end",
      `--x\r\nContent-Disposition: form-data; name="a"${"p".repeat(1024 * 1024)}`,
      "multipart/form-data; boundary=x",
      /a part's headers are over 8192 bytes/,
    ],
    [
      "more than 10,000 parts",
      multipart(
        "x",
        Array.from({ length: 10_001 }, () => 'Content-Disposition: form-data; name="a"\r\n\r\nv'),
      ),
      "multipart/form-data; boundary=x",
      /more than 10000 parts/,
    ],
    [
      "more than 10,000 urlencoded pairs",
      "a=1&".repeat(10_001),
      "application/x-www-form-urlencoded",
      /more than 10000 application\/x-www-form-urlencoded pairs/,
    ],
    [
      "junk right after the close delimiter",
      multipart("x", ['Content-Disposition: form-data; name="a"\r\n\r\nv'], "--x--junk\r\n"),
      "multipart/form-data; boundary=x",
      /junk after the close delimiter/,
    ],
    [
      "a NUL in a part header",
      multipart("x", ['Content-Disposition: form-data; name="a\u0000"\r\n\r\nv']),
      "multipart/form-data; boundary=x",
      /a part header has a NUL, or a CR or LF outside CRLF/,
    ],
    [
      "a bare LF in a part header",
      multipart("x", ['Content-Disposition: form-data; name="a\nb"\r\n\r\nv']),
      "multipart/form-data; boundary=x",
      /a part header has a NUL, or a CR or LF outside CRLF/,
    ],
    [
      "a part header name that is not a token",
      multipart("x", ['Content-Disposition: form-data; name="a"\r\nCont ent-Type: text/plain\r\n\r\nv']),
      "multipart/form-data; boundary=x",
      /malformed part header line "Cont ent-Type: text\/plain"/,
    ],
    [
      "a Content-Disposition that is not form-data",
      multipart("x", ['Content-Disposition: attachment; name="a"\r\n\r\nv']),
      "multipart/form-data; boundary=x",
      /Content-Disposition is not form-data/,
    ],
    ["a part without headers", multipart("x", ["\r\nv"]), "multipart/form-data; boundary=x", /a part has no headers/],
    ["an empty boundary", "----\r\n", 'multipart/form-data; boundary=""', /the boundary parameter is empty/],
    [
      "a boundary over 70 bytes (RFC 2046)",
      multipart("b".repeat(71), ['Content-Disposition: form-data; name="a"\r\n\r\nv']),
      `multipart/form-data; boundary=${"b".repeat(71)}`,
      /the boundary is over 70 bytes/,
    ],
    // 6 MB of pairs would take over 64 MB of heap if parsed; counted first, they fail fast.
    ["6 MB of empty urlencoded pairs", "a&".repeat(3_000_000), "application/x-www-form-urlencoded", /more than 10000/],
  ])("rejects %s with a TypeError, quickly", async (_name, body, contentType, message) => {
    const [error, ms] = (await probe("parseError", body, contentType)) as [string, number];
    expect(error).toMatch(/^TypeError: Could not parse the body as FormData: /);
    expect(error).toMatch(message);
    expect(ms).toBeLessThan(1_000);
  });

  it("10,000 urlencoded pairs are allowed, and empty sequences between '&'s do not count", async () => {
    const [entries] = (await probe(
      "parse",
      `${"&".repeat(50_000)}${"k=v&".repeat(10_000)}`,
      "application/x-www-form-urlencoded",
    )) as [unknown[]];
    expect(entries).toHaveLength(10_000);
  });

  const boundary70 = "a".repeat(70);
  const paddedPart = `Content-Disposition: form-data; name="a"\r\nX: a${" ".repeat(8_000)}b\r\n\r\nv`;
  it.each([
    // @remix-run/multipart-parser's Boyer-Moore-Horspool needed 900 ms for this one; V8's string search ~50.
    [
      "against the boundary search (70 'a's in a sea of 'a's)",
      multipart(boundary70, [`Content-Disposition: form-data; name="x"\r\n\r\n${"a".repeat(6_000_000)}`]),
      `multipart/form-data; boundary=${boundary70}`,
      1,
    ],
    // A regex trim (/^[\t ]+|[\t ]+$/) took 27 ms per such header line, 20 s for the body; a loop ~40 ms.
    [
      "against header trimming (740 parts, each with 8,000 spaces inside a header)",
      multipart(
        "x",
        Array.from({ length: 740 }, () => paddedPart),
      ),
      "multipart/form-data; boundary=x",
      740,
    ],
  ])("parses a 6 MB body crafted %s within 400 ms of CPU", async (_name, body, contentType, count) => {
    // CPU time, not wall time, so a busy machine does not fail it.
    const { isolate } = await isolateFor(PROBES, { cpuMs: 400, timeoutMs: 10_000, snapshot });
    try {
      const [entries] = (await probe("parse", body, contentType, isolate)) as [unknown[]];
      expect(entries).toHaveLength(count);
    } finally {
      isolate.dispose();
    }
  });

  it("parses 10,000 tiny parts, the most allowed", async () => {
    const body = multipart(
      "x",
      Array.from({ length: 10_000 }, (_, i) => `Content-Disposition: form-data; name="f${i}"\r\n\r\n${i}`),
    );
    const [entries] = (await probe("parse", body, "multipart/form-data; boundary=x")) as [Array<[string, string]>];
    expect(entries).toHaveLength(10_000);
    expect(entries[9_999]).toEqual(["f9999", "9999"]);
  });
});

/**
 * WPT fetch/api/body/formdata-parsing.any.js, restated (the web-platform-tests ship in no npm
 * package): each case is [description, body lines joined by CRLF, expected entries or "failure",
 * Content-Type when not `multipart/form-data; boundary=boundary`]. A file is {name, type, body}.
 */
type ParsedValue = string | { name: string; type: string; body: string };
type ParsingCase = [string, string[], Array<[string, ParsedValue]> | "failure", string?];
const CD = (params: string) => `Content-Disposition: form-data; ${params}`;
const closed = (...lines: string[]) => ["--boundary", ...lines, "--boundary--", ""];
const file = (name: string, type: string, body: string) => ({ name, type, body });
const WPT_PARSING: ParsingCase[] = [
  [
    "a file part without Content-Type",
    closed(CD('name="file"; filename="hello.txt"'), "", "file contents"),
    [["file", file("hello.txt", "text/plain", "file contents")]],
  ],
  [
    "a file part with Content-Type",
    closed(CD('name="f"; filename="i.png"'), "Content-Type: image/png", "", "PNG"),
    [["f", file("i.png", "image/png", "PNG")]],
  ],
  [
    "Content-Type before Content-Disposition",
    closed("Content-Type: image/png", CD('name="f"; filename="i.png"'), "", "PNG"),
    [["f", file("i.png", "image/png", "PNG")]],
  ],
  [
    "string and file parts",
    closed(
      CD('name="a"'),
      "",
      "1",
      "--boundary",
      CD('name="f"; filename="d.txt"'),
      "Content-Type: text/plain",
      "",
      "data",
      "--boundary",
      CD('name="b"'),
      "",
      "2",
    ),
    [
      ["a", "1"],
      ["f", file("d.txt", "text/plain", "data")],
      ["b", "2"],
    ],
  ],
  ["percent sequences in a name, not decoded", closed(CD('name="a%0Ab%22c%25d"'), "", "v"), [["a%0Ab%22c%25d", "v"]]],
  [
    "percent sequences in a filename, not decoded",
    closed(CD('name="a"; filename="x%0Ay%22.txt"'), "", "v"),
    [["a", file("x%0Ay%22.txt", "text/plain", "v")]],
  ],
  ["an empty filename", closed(CD('name="a"; filename=""'), "", "v"), [["a", file("", "text/plain", "v")]]],
  ["an empty string part", closed(CD('name="a"'), "", ""), [["a", ""]]],
  ["an empty file part", closed(CD('name="a"; filename="e.txt"'), "", ""), [["a", file("e.txt", "text/plain", "")]]],
  ["a value with the boundary as text", closed(CD('name="a"'), "", "my boundary here"), [["a", "my boundary here"]]],
  ["a value with --boundary not after CRLF", closed(CD('name="a"'), "", "x--boundary"), [["a", "x--boundary"]]],
  ["a value with CRLF", closed(CD('name="a"'), "", "line1", "line2"), [["a", "line1\r\nline2"]]],
  ["transport padding after a delimiter", ["--boundary \t", CD('name="a"'), "", "v", "--boundary--", ""], [["a", "v"]]],
  [
    "transport padding after the close delimiter",
    ["--boundary", CD('name="a"'), "", "v", "--boundary-- \t", ""],
    [["a", "v"]],
  ],
  ["transport padding at the end of input", ["--boundary", CD('name="a"'), "", "v", "--boundary--  "], [["a", "v"]]],
  ["an epilogue", ["--boundary", CD('name="a"'), "", "v", "--boundary--", "epilogue", "more"], [["a", "v"]]],
  [
    "duplicate names",
    closed(CD('name="a"'), "", "1", "--boundary", CD('name="a"'), "", "2"),
    [
      ["a", "1"],
      ["a", "2"],
    ],
  ],
  ["unknown headers, ignored", closed(CD('name="a"'), "X-Custom: ignored", "", "v"), [["a", "v"]]],
  [
    "Content-Transfer-Encoding, ignored",
    closed(CD('name="a"'), "Content-Transfer-Encoding: base64", "", "dmFsdWU="),
    [["a", "dmFsdWU="]],
  ],
  [
    "header names in any case",
    closed('CONTENT-DISPOSITION: form-data; name="a"; filename="f"', "CoNtEnT-TyPe: text/html", "", "v"),
    [["a", file("f", "text/html", "v")]],
  ],
  ["whitespace before a header name", closed(` ${CD('name="a"')}`, "", "v"), [["a", "v"]]],
  [
    "whitespace between a header name and the colon",
    closed('Content-Disposition \t: form-data; name="a"', "", "v"),
    [["a", "v"]],
  ],
  [
    "two Content-Types, the last winning",
    closed(CD('name="a"; filename="f"'), "Content-Type: text/html", "Content-Type: text/plain", "", "v"),
    [["a", file("f", "text/plain", "v")]],
  ],
  [
    "a Content-Type to trim",
    closed(CD('name="a"; filename="f"'), "Content-Type: \t text/html \t", "", "v"),
    [["a", file("f", "text/html", "v")]],
  ],
  [
    "a Content-Type to lowercase",
    closed(CD('name="a"; filename="f"'), "Content-Type: TEXT/HTML", "", "v"),
    [["a", file("f", "text/html", "v")]],
  ],
  [
    "a Content-Type that is no MIME type",
    closed(CD('name="a"; filename="f"'), "Content-Type: text", "", "v"),
    [["a", file("f", "", "v")]],
  ],
  [
    "a Content-Type serialised again",
    closed(CD('name="a"; filename="f"'), 'Content-Type: text/html;;x="y"', "", "v"),
    [["a", file("f", "text/html;x=y", "v")]],
  ],
  [
    "a Content-Type list, the last winning",
    closed(CD('name="a"; filename="f"'), "Content-Type: text/html, text/plain", "", "v"),
    [["a", file("f", "text/plain", "v")]],
  ],
  [
    "a non-ASCII Content-Type",
    closed(CD('name="a"; filename="f"'), "Content-Type: text/é", "", "v"),
    [["a", file("f", "", "v")]],
  ],
  [
    "a Content-Type with a control character",
    closed(CD('name="a"; filename="f"'), "Content-Type: text/\u0001plain", "", "v"),
    [["a", file("f", "", "v")]],
  ],
  [
    "an empty Content-Type",
    closed(CD('name="a"; filename="f"'), "Content-Type:", "", "v"),
    [["a", file("f", "", "v")]],
  ],
  ["a non-ASCII name", closed(CD('name="é"'), "", "v"), [["é", "v"]]],
  [
    "a non-ASCII filename",
    closed(CD('name="a"; filename="中文.txt"'), "", "v"),
    [["a", file("中文.txt", "text/plain", "v")]],
  ],
  ["a non-ASCII value", closed(CD('name="a"'), "", "😀"), [["a", "😀"]]],
  ["other control characters in a name", closed(CD('name="a\u0001bc"'), "", "v"), [["a\u0001bc", "v"]]],
  ["_charset_, as a normal entry", closed(CD('name="_charset_"'), "", "windows-1252"), [["_charset_", "windows-1252"]]],
  [
    "a quoted boundary",
    ["--a.b(c)", CD('name="a"'), "", "v", "--a.b(c)--", ""],
    [["a", "v"]],
    'multipart/form-data; boundary="a.b(c)"',
  ],
  [
    "a non-ASCII boundary",
    ["--bé", CD('name="a"'), "", "v", "--bé--", ""],
    [["a", "v"]],
    'multipart/form-data; boundary="bé"',
  ],
  ["a preamble", ["preamble", ...closed(CD('name="a"'), "", "v")], "failure"],
  ["junk after the close delimiter", ["--boundary", CD('name="a"'), "", "v", "--boundary--junk", ""], "failure"],
  ["a part without headers", closed("", "v"), "failure"],
  ["no Content-Disposition", closed("Content-Type: text/plain", "", "v"), "failure"],
  ["a header without a colon", closed('Content-Disposition form-data; name="a"', "", "v"), "failure"],
  ["a header name that is no token", closed(CD('name="a"'), "Cont ent-Type: text/plain", "", "v"), "failure"],
  ["an obs-fold continuation line", closed("Content-Disposition: form-data;", ' name="a"', "", "v"), "failure"],
  ["a NUL in a name", closed(CD('name="a\u0000b"'), "", "v"), "failure"],
  ["a NUL in an unknown header", closed(CD('name="a"'), "X-Custom: a\u0000b", "", "v"), "failure"],
  ["no close delimiter", ["--boundary", CD('name="a"'), "", "v"], "failure"],
  ["no CRLF before the close delimiter", ["--boundary", CD('name="a"'), "", "v--boundary--", ""], "failure"],
  ["a bare LF in a name", closed(CD('name="a\nb"'), "", "v"), "failure"],
  ["a bare CR in a name", closed(CD('name="a\rb"'), "", "v"), "failure"],
  ["a bare LF in a filename", closed(CD('name="a"; filename="f\ng"'), "", "v"), "failure"],
  [
    "a bare LF in a header value",
    closed(CD('name="a"; filename="f"'), "Content-Type: text/\nhtml", "", "v"),
    "failure",
  ],
  ["nothing after the first delimiter", ["--boundary"], "failure"],
  ["no boundary parameter", closed(CD('name="a"'), "", "v"), "failure", "multipart/form-data"],
  [
    "an empty boundary parameter",
    ["--", CD('name="a"'), "", "v", "----", ""],
    "failure",
    'multipart/form-data; boundary=""',
  ],
];

/** Runs every case in one invocation: [entries] with files described, or ["TypeError", message]. */
const WPT_PARSING_FUNCTION = `
export default {
  async fetch(request) {
    const out = [];
    for (const [body, contentType] of await request.json()) {
      try {
        const form = await new Response(body, { headers: { "content-type": contentType } }).formData();
        const entries = [];
        for (const [name, value] of form) {
          entries.push([name, typeof value === "string" ? value : { name: value.name, type: value.type, body: await value.text() }]);
        }
        out.push([entries]);
      } catch (err) {
        out.push([err.name, err.message]);
      }
    }
    return Response.json(out);
  },
};`;

describe("WPT fetch/api/body/formdata-parsing.any.js, restated, in an isolate", () => {
  let outcomes: unknown[][];
  beforeAll(async () => {
    const { isolate } = await isolateFor(WPT_PARSING_FUNCTION, { timeoutMs: 10_000, cpuMs: 5_000 });
    try {
      const cases = WPT_PARSING.map(([, lines, , contentType]) => [
        lines.join("\r\n"),
        contentType ?? "multipart/form-data; boundary=boundary",
      ]);
      const out = await isolate.invoke(
        "wpt",
        requestJson("http://fn.test/", "POST"),
        new TextEncoder().encode(JSON.stringify(cases)),
      );
      if (!out.ok) throw new Error(`${out.code} ${out.message}`);
      outcomes = JSON.parse(text(out.body));
    } finally {
      isolate.dispose();
    }
  });

  it.each(WPT_PARSING.map((testCase, index) => [testCase[0], testCase[2], index] as const))(
    "%s",
    (_description, expected, index) => {
      const outcome = outcomes[index];
      if (expected === "failure") expect(outcome?.[0]).toBe("TypeError");
      else expect(outcome).toEqual([expected]);
    },
  );
});

/** Deployed through the real control API and called over HTTP through the gateway. */
const UPLOAD_FUNCTION = `
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname.endsWith("/echo-form")) return new Response(await request.formData());
    let form;
    try {
      form = await request.formData();
    } catch (err) {
      return Response.json({ error: err.name, message: err.message }, { status: 400 });
    }
    const seen = [];
    for (const [name, value] of form) {
      if (typeof value === "string") { seen.push({ name, value }); continue; }
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await value.arrayBuffer()));
      seen.push({ name, file: value.name, type: value.type, size: value.size,
        sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join("") });
    }
    return Response.json(seen);
  },
};`;

describe("FormData uploads through the gateway", () => {
  let cluster: InProcessCluster;
  let base: string;
  beforeAll(async () => {
    cluster = await startInProcessCluster();
    await cluster.hearth.deploy("upload", { code: UPLOAD_FUNCTION, cpuMs: 5_000, timeoutMs: 10_000 });
    base = `${cluster.gateway.url}/fn/upload`;
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it("a function parses a multipart upload posted with undici's FormData and answers with what it saw", async () => {
    const picture = new Uint8Array(300_000).map((_, i) => (i * 7919) % 256);
    const form = new UndiciFormData();
    form.append("title", "Holiday ✓");
    form.append("picture", new Blob([picture], { type: "image/png" }), "beach.png");
    form.append("tags", "sea");
    form.append("tags", "sun");
    const res = await undiciFetch(base, { method: "POST", body: form });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([
      { name: "title", value: "Holiday ✓" },
      {
        name: "picture",
        file: "beach.png",
        type: "image/png",
        size: 300_000,
        sha256: createHash("sha256").update(picture).digest("hex"),
      },
      { name: "tags", value: "sea" },
      { name: "tags", value: "sun" },
    ]);
  });

  it("a function's FormData response parses in undici (Node's fetch)", async () => {
    const form = new UndiciFormData();
    form.append("greeting", "hi\nthere");
    form.append("doc", new Blob(["%PDF-1.7"], { type: "application/pdf" }), "a.pdf");
    const res = await undiciFetch(`${base}/echo-form`, { method: "POST", body: form });
    expect(res.headers.get("content-type")).toMatch(/^multipart\/form-data; boundary=/);
    const back = await res.formData();
    expect(back.get("greeting")).toBe("hi\r\nthere");
    const doc = back.get("doc");
    if (doc === null || typeof doc === "string") throw new Error(`doc came back as ${doc}`);
    expect([doc.name, doc.type, await doc.text()]).toEqual(["a.pdf", "application/pdf", "%PDF-1.7"]);
  });

  it("a malformed upload reaches the function as a TypeError it can answer with a 400", async () => {
    const res = await undiciFetch(base, {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=cut" },
      body: `--cut\r\nContent-Disposition: form-data; name="a"\r\n\r\nno end`,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: "TypeError",
      message: "Could not parse the body as FormData: the body ends before its close delimiter",
    });
  });
});
