import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isolateFor, requestJson, text } from "../../test/support/isolate.ts";
import type { FunctionIsolate } from "../isolate/function-isolate.ts";
import { createEgressPolicy } from "./egress-policy.ts";

/** A real HTTP server on 127.0.0.1 that counts what reaches it. */
let server: Server;
let port: number;
let hits = 0;
/** A second origin (another port) that reports which credentials reached it. */
let other: Server;
let otherPort: number;

beforeAll(async () => {
  server = createServer(async (req, res) => {
    hits++;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/redirect") return res.writeHead(302, { location: "/echo?from=redirect" }).end();
    if (url.pathname === "/redirect-out")
      return res.writeHead(302, { location: `http://127.0.0.2:${port}/echo` }).end();
    if (url.pathname === "/redirect-other-origin")
      return res.writeHead(307, { location: `http://127.0.0.1:${otherPort}/` }).end();
    if (url.pathname === "/slow") return setTimeout(() => res.end("late"), 1_000);
    res.writeHead(201, [
      ["content-type", "application/json"],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
    res.end(
      JSON.stringify({
        method: req.method,
        path: req.url,
        header: req.headers["x-test"],
        body: Buffer.concat(chunks).toString(),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  other = createServer((req, res) =>
    res.end(
      JSON.stringify({
        authorization: req.headers.authorization ?? null,
        cookie: req.headers.cookie ?? null,
        kept: req.headers["x-test"] ?? null,
      }),
    ),
  );
  await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  otherPort = (other.address() as AddressInfo).port;
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await new Promise<void>((resolve) => other.close(() => resolve()));
});

/** A function that runs `script` (an async function body with `base` in scope) and returns its result as JSON. */
const PROBE = `export default { async fetch(request) {
  const { script, base } = await request.json();
  try {
    return Response.json({ ok: true, value: await (new Function("base", "return (async () => {" + script + "})()"))(base) });
  } catch (e) {
    return Response.json({ ok: false, name: e?.name, message: String(e?.message ?? e) });
  }
} };`;

async function run(
  fn: FunctionIsolate,
  script: string,
): Promise<{ ok: boolean; value?: unknown; name?: string; message?: string }> {
  const body = new TextEncoder().encode(JSON.stringify({ script, base: `http://127.0.0.1:${port}` }));
  const out = await fn.invoke("inv", requestJson("http://fn.test/", "POST"), body);
  if (!out.ok) throw new Error(`${out.code}: ${out.message}`);
  return JSON.parse(text(out.body));
}

describe("egress policy", () => {
  it("denies loopback, private, link-local, metadata and reserved addresses, v4 and v6", () => {
    const policy = createEgressPolicy();
    for (const ip of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "0:0:0:0:0:ffff:a9fe:a9fe",
      "::127.0.0.1",
      "::",
      "224.0.0.1",
    ]) {
      expect([ip, policy.isAllowed(ip)]).toEqual([ip, false]);
    }
    for (const ip of ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
      expect([ip, policy.isAllowed(ip)]).toEqual([ip, true]);
  });

  it("lets the operator allow addresses and ranges", () => {
    const policy = createEgressPolicy("127.0.0.1, 10.0.0.0/8");
    expect([policy.isAllowed("127.0.0.1"), policy.isAllowed("10.9.9.9"), policy.isAllowed("127.0.0.2")]).toEqual([
      true,
      true,
      false,
    ]);
    expect(() => createEgressPolicy("not-an-ip")).toThrow(/not-an-ip/);
  });
});

describe("fetch() from a function, default policy", () => {
  let fn: FunctionIsolate;
  beforeAll(async () => {
    fn = (await isolateFor(PROBE)).isolate;
  });
  afterAll(() => fn?.dispose());

  it.each([
    [
      "an IP literal on loopback",
      "return (await fetch(base + '/echo')).status;",
      /127\.0\.0\.1 is an address functions may not reach/,
    ],
    [
      "a hostname resolving to loopback",
      "return (await fetch(base.replace('127.0.0.1', 'localhost') + '/echo')).status;",
      /localhost resolves to/,
    ],
    [
      "the cloud metadata address",
      "return (await fetch('http://169.254.169.254/latest/meta-data/')).status;",
      /169\.254\.169\.254/,
    ],
    [
      "IPv6 loopback",
      "return (await fetch(base.replace('127.0.0.1', '[::1]') + '/echo')).status;",
      /::1 is an address/,
    ],
    [
      "loopback as an IPv4-mapped IPv6 literal",
      "return (await fetch(base.replace('127.0.0.1', '[::ffff:7f00:1]') + '/echo')).status;",
      /may not reach/,
    ],
    [
      "loopback as a decimal host",
      "return (await fetch(base.replace('127.0.0.1', '2130706433') + '/echo')).status;",
      /127\.0\.0\.1 is an address/,
    ],
    [
      "loopback as a short hex host",
      "return (await fetch(base.replace('127.0.0.1', '0x7f.1') + '/echo')).status;",
      /127\.0\.0\.1 is an address/,
    ],
    ["a non-http scheme", "return (await fetch('file:///etc/passwd')).status;", /Only http: and https:/],
  ])("refuses %s with a TypeError, and nothing reaches the server", async (_, script, message) => {
    const before = hits;
    const result = await run(fn, script);
    expect(result).toMatchObject({ ok: false, name: "TypeError", message: expect.stringMatching(message) });
    expect(hits).toBe(before);
  });
});

describe("fetch() from a function, with HEARTH_EGRESS_ALLOW=127.0.0.1", () => {
  let fn: FunctionIsolate;
  beforeAll(async () => {
    fn = (await isolateFor(PROBE, { egressAllow: "127.0.0.1", timeoutMs: 5_000 })).isolate;
  });
  afterAll(() => fn?.dispose());

  it("sends method, headers and body, and returns status, headers and body", async () => {
    const result = await run(
      fn,
      `const r = await fetch(base + "/echo?x=1", { method: "POST", headers: { "x-test": "yes" }, body: "payload" });
       return { status: r.status, type: r.headers.get("content-type"), cookies: r.headers.getSetCookie(), json: await r.json(), url: r.url, redirected: r.redirected };`,
    );
    expect(result).toEqual({ ok: true, value: expect.anything() });
    expect(result.value).toEqual({
      status: 201,
      type: "application/json",
      cookies: ["a=1", "b=2"],
      json: { method: "POST", path: "/echo?x=1", header: "yes", body: "payload" },
      url: `http://127.0.0.1:${port}/echo?x=1`,
      redirected: false,
    });
  });

  it("follows redirects, and returns them as they are with redirect: 'manual'", async () => {
    const followed = await run(
      fn,
      `const r = await fetch(base + "/redirect"); return [r.status, r.redirected, new URL(r.url).search];`,
    );
    expect(followed.value).toEqual([201, true, "?from=redirect"]);
    const manual = await run(
      fn,
      `const r = await fetch(base + "/redirect", { redirect: "manual" }); return [r.status, r.headers.get("location")];`,
    );
    expect(manual.value).toEqual([302, "/echo?from=redirect"]);
  });

  it("drops credentials when a redirect leaves the origin", async () => {
    const result = await run(
      fn,
      `const r = await fetch(base + "/redirect-other-origin", { headers: { authorization: "Bearer secret", cookie: "s=1", "x-test": "kept" } });
       return await r.json();`,
    );
    expect(result.value).toEqual({ authorization: null, cookie: null, kept: "kept" });
  });

  it("checks every redirect hop against the policy", async () => {
    const result = await run(fn, `return (await fetch(base + "/redirect-out")).status;`);
    expect(result).toMatchObject({ ok: false, name: "TypeError", message: expect.stringMatching(/127\.0\.0\.2/) });
  });

  it("aborts with AbortSignal.timeout", async () => {
    const result = await run(fn, `await fetch(base + "/slow", { signal: AbortSignal.timeout(30) });`);
    expect(result).toMatchObject({ ok: false, name: "TimeoutError" });
  });

  it("caps outbound requests per invocation", async () => {
    const result = await run(fn, `for (let i = 0; i < 60; i++) await fetch(base + "/echo"); return "no cap";`);
    expect(result).toMatchObject({
      ok: false,
      name: "TypeError",
      message: expect.stringMatching(/more than 50 outbound requests/),
    });
  });
});
