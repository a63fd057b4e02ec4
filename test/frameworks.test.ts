import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionIsolate, InvokeOutcome } from "../runtime/index.ts";
import { buildBundle } from "../sdk/index.ts";
import { isolateFor, requestJson, text } from "./support/isolate.ts";

/** Web-standard frameworks, bundled from npm by the CLI's bundler, run unmodified in an isolate. */
/** Bundles a fixture app for the enclosing describe block; returns a getter for its isolate. */
function useApp(file: string): () => FunctionIsolate {
  let isolate: FunctionIsolate | undefined;
  beforeAll(async () => {
    const bundle = await buildBundle(fileURLToPath(new URL(`./fixtures/frameworks/${file}`, import.meta.url)));
    isolate = (await isolateFor(bundle.code, { env: { GREETING: "hi" } })).isolate;
  });
  afterAll(() => isolate?.dispose());
  return () => isolate as FunctionIsolate;
}

let n = 0;
function call(
  isolate: FunctionIsolate,
  path: string,
  init: { method?: string; headers?: Array<[string, string]>; body?: string } = {},
) {
  const body = init.body === undefined ? null : new TextEncoder().encode(init.body);
  return isolate.invoke(
    `req-${n++}`,
    requestJson(`http://fn.test${path}`, init.method ?? "GET", init.headers ?? []),
    body,
  );
}

function ok(out: InvokeOutcome) {
  if (!out.ok) throw new Error(`invocation failed: ${out.code} ${out.message} ${out.detail?.stack ?? ""}`);
  const header = (name: string) => out.head.headers.filter(([k]) => k === name).map(([, v]) => v);
  return { status: out.head.status, header, text: text(out.body), json: () => JSON.parse(text(out.body)) };
}

describe("Hono", () => {
  const app = useApp("hono-app.ts");

  it("routes text and path params to JSON", async () => {
    expect(ok(await call(app(), "/")).text).toBe("hono root");
    const user = ok(await call(app(), "/users/7"));
    expect([user.status, user.json()]).toEqual([200, { id: "7", name: "Ada" }]);
    expect(user.header("content-type")[0]).toMatch(/^application\/json/);
    expect(ok(await call(app(), "/users/404")).status).toBe(404);
  });

  it("reads JSON bodies and request headers, answers 201", async () => {
    const created = ok(
      await call(app(), "/users", {
        method: "POST",
        headers: [
          ["content-type", "application/json"],
          ["x-client", "test"],
        ],
        body: JSON.stringify({ id: "8", name: "Grace" }),
      }),
    );
    expect([created.status, created.json()]).toEqual([201, { created: { id: "8", name: "Grace" }, via: "test" }]);
    expect(ok(await call(app(), "/users/8")).json()).toEqual({ id: "8", name: "Grace" });
  });

  it("parses query strings, redirects, sets repeated headers, reads env", async () => {
    expect(ok(await call(app(), "/search?q=x%20y&tag=a&tag=b")).json()).toEqual({ q: "x y", tags: ["a", "b"] });
    const redirect = ok(await call(app(), "/redirect"));
    expect([redirect.status, redirect.header("location")]).toEqual([301, ["/users/7"]]);
    const headers = ok(await call(app(), "/headers"));
    expect(headers.header("x-powered-by")).toEqual(["hono"]);
    expect(headers.header("set-cookie")).toEqual(["a=1", "b=2"]);
    expect(ok(await call(app(), "/env")).json()).toEqual({ greeting: "hi" });
  });

  it("uses its own notFound and onError handlers", async () => {
    const missing = ok(await call(app(), "/nope"));
    expect([missing.status, missing.json()]).toEqual([404, { error: "no route", path: "/nope" }]);
    const boom = ok(await call(app(), "/boom"));
    expect([boom.status, boom.json()]).toEqual([500, { error: "handled by onError" }]);
  });
});

describe("itty-router", () => {
  const app = useApp("itty-app.ts");

  it("routes text, params and 404s", async () => {
    // AutoRouter formats every returned value as JSON, a string included.
    expect(ok(await call(app(), "/")).json()).toBe("itty root");
    expect(ok(await call(app(), "/items/1")).json()).toEqual({ id: "1", title: "first" });
    const missing = ok(await call(app(), "/items/9"));
    expect([missing.status, missing.json()]).toEqual([404, { status: 404, error: "no such item" }]);
    expect(ok(await call(app(), "/no/route")).status).toBe(404);
  });

  it("reads JSON bodies, sets status and headers, parses queries, reads env", async () => {
    const created = ok(
      await call(app(), "/items", {
        method: "POST",
        headers: [["content-type", "application/json"]],
        body: '{"id":"2","title":"second"}',
      }),
    );
    expect([created.status, created.header("x-created"), created.json()]).toEqual([
      201,
      ["2"],
      { created: { id: "2", title: "second" } },
    ]);
    expect(ok(await call(app(), "/query?a=1&b=2")).json()).toEqual({ query: { a: "1", b: "2" } });
    expect(ok(await call(app(), "/env")).json()).toEqual({ greeting: "hi" });
  });
});
