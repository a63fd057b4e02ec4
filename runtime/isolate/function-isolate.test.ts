import { describe, expect, it } from "vitest";
import { isolateFor, isolatesPerTest, requestJson, text } from "../../test/support/isolate.ts";
import type { FunctionIsolate } from "./function-isolate.ts";

const { start } = isolatesPerTest();

describe("function isolate: the request a function sees", () => {
  it("passes method, url, headers and body, and returns status, headers and body", async () => {
    const { isolate } = await start(
      `export default {
      async fetch(request, env) {
        const url = new URL(request.url);
        return new Response(JSON.stringify({
          method: request.method, path: url.pathname, q: url.searchParams.get("x"),
          a: request.headers.get("x-a"), body: await request.text(), env: env.GREETING,
        }), { status: 201, headers: { "x-out": "yes", "content-type": "application/json" } });
      },
    };`,
      { env: { GREETING: "hey" } },
    );
    const out = await isolate.invoke(
      "inv-1",
      requestJson("http://h.test/some/path?x=1", "POST", [["x-a", "b"]]),
      new TextEncoder().encode("hi"),
    );
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.head.status).toBe(201);
    expect(out.head.headers).toContainEqual(["x-out", "yes"]);
    expect(JSON.parse(text(out.body))).toEqual({
      method: "POST",
      path: "/some/path",
      q: "1",
      a: "b",
      body: "hi",
      env: "hey",
    });
  });

  it("supports Response.json, Response.redirect, binary bodies, TextEncoder/TextDecoder and multiple Set-Cookie", async () => {
    const { isolate } = await start(`export default {
      async fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === "/json") return Response.json({ ok: true, s: new TextDecoder().decode(new TextEncoder().encode("é✓")) });
        if (path === "/redirect") return Response.redirect("https://example.com/next", 307);
        if (path === "/bytes") return new Response(new Uint8Array([0, 1, 2, 255]));
        const h = new Headers();
        h.append("set-cookie", "a=1");
        h.append("set-cookie", "b=2");
        return new Response(null, { status: 204, headers: h });
      },
    };`);
    const json = await isolate.invoke("1", requestJson("http://h/json"), null);
    expect(json.ok && JSON.parse(text(json.body))).toEqual({ ok: true, s: "é✓" });
    expect(json.ok && json.head.headers).toContainEqual(["content-type", "application/json"]);
    const redirect = await isolate.invoke("2", requestJson("http://h/redirect"), null);
    expect(redirect.ok && redirect.head).toEqual({ status: 307, headers: [["location", "https://example.com/next"]] });
    const bytes = await isolate.invoke("3", requestJson("http://h/bytes"), null);
    expect(bytes.ok && [...bytes.body]).toEqual([0, 1, 2, 255]);
    const cookies = await isolate.invoke("4", requestJson("http://h/cookies"), null);
    expect(cookies.ok && cookies.head.headers.filter(([k]) => k === "set-cookie")).toEqual([
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
  });

  it("captures console output with its level and the invocation id", async () => {
    const { isolate, console: lines } = await start(`export default {
      async fetch() { console.log("hello", { a: 1 }); console.error(new Error("boom")); return new Response("ok"); },
    };`);
    await isolate.invoke("inv-42", requestJson(), null);
    await expect.poll(() => lines.length).toBe(2);
    expect(lines[0]).toEqual({ level: "log", message: "hello { a: 1 }", invocationId: "inv-42" });
    expect(lines[1]?.level).toBe("error");
    expect(lines[1]?.message).toContain("Error: boom");
  });
});

describe("function isolate: failures become coded outcomes", () => {
  it("a thrown error is ERR_FUNCTION_THREW, with the stack kept for the logs", async () => {
    const { isolate } = await start(`export default { fetch() { throw new TypeError("bad thing"); } };`);
    const out = await isolate.invoke("1", requestJson(), null);
    expect(out).toMatchObject({ ok: false, code: "ERR_FUNCTION_THREW", message: "bad thing" });
    expect(!out.ok && out.detail?.stack).toContain("TypeError: bad thing");
    // The isolate survives a thrown error and serves the next request.
    expect(isolate.disposed).toBe(false);
  });

  it("a rejected promise is ERR_FUNCTION_THREW too", async () => {
    const { isolate } = await start(`export default { async fetch() { await null; throw new Error("later"); } };`);
    expect(await isolate.invoke("1", requestJson(), null)).toMatchObject({ ok: false, code: "ERR_FUNCTION_THREW" });
  });

  it.each([
    ["a string", `"hello"`],
    ["undefined", `undefined`],
    ["a plain object", `({ status: 200, body: "x" })`],
  ])("returning %s instead of a Response is ERR_INVALID_RESPONSE", async (_, value) => {
    const { isolate } = await start(`export default { fetch() { return ${value}; } };`);
    const out = await isolate.invoke("1", requestJson(), null);
    expect(out).toMatchObject({ ok: false, code: "ERR_INVALID_RESPONSE" });
    expect(!out.ok && out.message).toMatch(/must return a Response/);
  });

  it.each([
    [
      "a Response tampered into an invalid status or header",
      `export default { fetch(request) {
        const r = new Response("x");
        if (request.url.endsWith("/a")) Object.defineProperty(r, "status", { value: "999" });
        else Object.defineProperty(r, "headers", { value: [["bad name", "x\\r\\ninjected: 1"]] });
        return r;
      } };`,
    ],
    [
      "a response with too many or too large headers",
      `export default { fetch(request) {
        const h = new Headers();
        if (request.url.endsWith("/a")) for (let i = 0; i < 300; i++) h.append("x-h" + i, "v");
        else h.set("x-big", "v".repeat(70000));
        return new Response("x", { headers: h });
      } };`,
    ],
  ])("%s is ERR_INVALID_RESPONSE, not a crash", async (_, source) => {
    const { isolate } = await start(source);
    for (const path of ["/a", "/b"]) {
      expect(await isolate.invoke(path, requestJson(`http://h${path}`), null)).toMatchObject({
        code: "ERR_INVALID_RESPONSE",
      });
    }
  });

  it("WebAssembly memory counts against the memory limit, also through memory.constructor", async () => {
    const { isolate } = await start(
      `export default { fetch() {
        const small = new WebAssembly.Memory({ initial: 1 });
        const results = [small instanceof WebAssembly.Memory, small.buffer.byteLength];
        for (const make of [() => new WebAssembly.Memory({ initial: 4096 }), () => new small.constructor({ initial: 4096 }), () => small.grow(4096)]) {
          try { make(); results.push("allowed"); } catch (e) { results.push(e.name); }
        }
        return Response.json(results);
      } };`,
      { memoryMb: 32 },
    );
    const out = await isolate.invoke("1", requestJson(), null);
    expect(out.ok && JSON.parse(text(out.body))).toEqual([true, 65536, "RangeError", "RangeError", "RangeError"]);
  });

  it("a top-level throw fails the load with ERR_FUNCTION_INVALID", async () => {
    await expect(isolateFor(`throw new Error("no"); export default { fetch() {} };`)).rejects.toMatchObject({
      code: "ERR_FUNCTION_INVALID",
    });
  });

  it("a module without a fetch handler fails the load with ERR_FUNCTION_INVALID", async () => {
    await expect(isolateFor(`export default { notFetch() {} };`)).rejects.toMatchObject({
      code: "ERR_FUNCTION_INVALID",
      message: expect.stringMatching(/no `export default \{ fetch/),
    });
  });

  it("an endless synchronous loop hits the CPU limit, ERR_FUNCTION_CPU_TIME, and the isolate is disposed", async () => {
    const { isolate } = await start(`export default { fetch() { while (true) {} } };`, { cpuMs: 30, timeoutMs: 5_000 });
    const started = performance.now();
    const out = await isolate.invoke("1", requestJson(), null);
    expect(out).toMatchObject({ ok: false, code: "ERR_FUNCTION_CPU_TIME" });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(isolate.disposed).toBe(true);
  });

  it("an endless loop after an await (not covered by isolated-vm's timeout) hits the CPU limit too", async () => {
    const { isolate } = await start(
      `export default { async fetch(request) { await request.text(); while (true) {} } };`,
      {
        cpuMs: 30,
        timeoutMs: 5_000,
      },
    );
    expect(await isolate.invoke("1", requestJson(), null)).toMatchObject({ ok: false, code: "ERR_FUNCTION_CPU_TIME" });
    expect(isolate.disposed).toBe(true);
  });

  it("waiting is not CPU: a 200 ms timer under a 20 ms CPU limit succeeds", async () => {
    const { isolate } = await start(
      `export default { async fetch() { await new Promise((r) => setTimeout(r, 200)); return new Response("waited"); } };`,
      { cpuMs: 20 },
    );
    const out = await isolate.invoke("1", requestJson(), null);
    expect(out.ok && text(out.body)).toBe("waited");
  });

  it("calls queued behind others in one isolate are charged only their own CPU", async () => {
    // 40 calls of ~4 ms CPU each, all in flight at once: 160 ms of CPU in one isolate under a 20 ms limit.
    const { isolate } = await start(
      `export default { fetch() { const end = Date.now() + 4; while (Date.now() < end) {} return new Response("done"); } };`,
      { cpuMs: 20, timeoutMs: 5_000 },
    );
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) => isolate.invoke(String(i), requestJson(), null)),
    );
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(isolate.disposed).toBe(false);
  });

  it("a runaway call among healthy ones in the same isolate still hits the CPU limit", async () => {
    const { isolate } = await start(
      `export default { async fetch(request) { if (new URL(request.url).pathname === "/spin") { while (true) {} } await new Promise((r) => setTimeout(r, 5)); return new Response("ok"); } };`,
      { cpuMs: 30, timeoutMs: 5_000 },
    );
    const healthy = Array.from({ length: 5 }, (_, i) => isolate.invoke(String(i), requestJson(), null));
    const spinning = await isolate.invoke("spin", requestJson("http://fn.test/spin"), null);
    expect(spinning).toMatchObject({ ok: false, code: "ERR_FUNCTION_CPU_TIME" });
    await Promise.all(healthy);
  });

  it("a function that never answers hits the wall-clock timeout, ERR_FUNCTION_TIMEOUT, and is disposed", async () => {
    const { isolate } = await start(`export default { fetch() { return new Promise(() => {}); } };`, {
      timeoutMs: 150,
    });
    expect(await isolate.invoke("1", requestJson(), null)).toMatchObject({ ok: false, code: "ERR_FUNCTION_TIMEOUT" });
    expect(isolate.disposed).toBe(true);
  });
});

describe("function isolate: nothing from Node is reachable", () => {
  it("has no process, require, Buffer, global or module, even through constructor tricks", async () => {
    const { isolate } = await start(`export default { fetch() {
      const probes = {};
      const tries = {
        process: () => typeof globalThis.process,
        require: () => typeof globalThis.require,
        Buffer: () => typeof globalThis.Buffer,
        global: () => typeof globalThis.global,
        module: () => typeof globalThis.module,
        ctorProcess: () => this.constructor.constructor("return typeof process")(),
        fnProcess: () => Function("return typeof process")(),
        evalRequire: () => (0, eval)("typeof require"),
        consoleCtor: () => console.log.constructor("return typeof process")(),
      };
      for (const [name, probe] of Object.entries(tries)) {
        try { probes[name] = probe(); } catch (e) { probes[name] = "threw " + e.name; }
      }
      probes.hostLog = typeof globalThis.__hearth_host_log;
      probes.init = typeof globalThis.__hearth_init;
      probes.globals = Object.getOwnPropertyNames(globalThis).filter((k) => /process|require|ivm|isolated|hearth_host/i.test(k));
      return Response.json(probes);
    } };`);
    const out = await isolate.invoke("1", requestJson(), null);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const probes = JSON.parse(text(out.body));
    for (const key of [
      "process",
      "require",
      "Buffer",
      "global",
      "module",
      "ctorProcess",
      "fnProcess",
      "evalRequire",
      "consoleCtor",
      "hostLog",
      "init",
    ]) {
      expect([key, probes[key]]).toEqual([key, "undefined"]);
    }
    expect(probes.globals).toEqual([]);
  });

  it("isolates made from the same snapshot share no state: globals, prototypes, randomness, time origin", async () => {
    const source = `export default { fetch() {
      const before = typeof Response.prototype.tampered;
      Response.prototype.tampered = true;
      globalThis.mark = (globalThis.mark ?? 0) + 1;
      return Response.json({ before, mark: globalThis.mark, uuid: crypto.randomUUID(), origin: performance.timeOrigin });
    } };`;
    const startedAt = Date.now();
    const { isolate: a } = await start(source);
    const { isolate: b } = await start(source);
    const read = async (isolate: FunctionIsolate) => {
      const out = await isolate.invoke("1", requestJson(), null);
      if (!out.ok) throw new Error(out.message);
      return JSON.parse(text(out.body));
    };
    const [first, second] = [await read(a), await read(b)];
    expect([first.before, first.mark, second.before, second.mark]).toEqual(["undefined", 1, "undefined", 1]);
    expect(first.uuid).not.toBe(second.uuid);
    expect(first.origin).toBeGreaterThanOrEqual(startedAt - 1);
  });

  it("functions in different isolates do not see each other's globals", async () => {
    const { isolate: writer } = await start(
      `globalThis.secret = "s3cr3t"; export default { fetch() { return new Response(String(globalThis.secret)); } };`,
    );
    const { isolate: reader } = await start(
      `export default { fetch() { return new Response(String(globalThis.secret)); } };`,
    );
    const a = await writer.invoke("1", requestJson(), null);
    const b = await reader.invoke("2", requestJson(), null);
    expect(a.ok && text(a.body)).toBe("s3cr3t");
    expect(b.ok && text(b.body)).toBe("undefined");
  });
});
