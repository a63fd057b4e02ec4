import { afterEach, describe, expect, it } from "vitest";
import {
  bootstrapFor,
  type ConsoleLine,
  functionCodeFor,
  isolateDepsFor,
  requestJson,
} from "../../test/support/isolate.ts";
import { type Bootstrap, FunctionIsolate } from "../index.ts";

/**
 * The runtime's rarely used parts (console's object rendering, FormData's parser and serializer,
 * crypto.subtle) are not in the snapshot every isolate starts from: an isolate compiles one when its
 * function first uses it. Real isolates; the host's copy of the bootstrap counts what is asked for.
 */
const live: FunctionIsolate[] = [];
afterEach(() => {
  for (const isolate of live.splice(0)) isolate.dispose();
});

async function start(source: string, snapshot = true) {
  const asked: string[] = [];
  const base = await bootstrapFor(snapshot);
  const bootstrap: Bootstrap = {
    ...base,
    lazyParts: new Proxy(base.lazyParts, {
      get: (parts, name) => {
        asked.push(String(name));
        return Reflect.get(parts, name);
      },
    }),
  };
  const console: ConsoleLine[] = [];
  const isolate = await FunctionIsolate.create(await functionCodeFor(source), {
    ...(await isolateDepsFor({}, console)),
    bootstrap,
  });
  live.push(isolate);
  const call = async (id: string) => {
    const out = await isolate.invoke(id, requestJson(), null);
    expect(out.ok, JSON.stringify(out)).toBe(true);
    return out;
  };
  return { asked, console, call };
}

describe("lazy parts of the runtime", () => {
  it("a function that logs strings and numbers and answers never loads one", async () => {
    const { asked, console, call } = await start(`export default { fetch() {
      console.log("took", 12, -0, 1.5, true, null, undefined, 7n, Symbol("s"));
      return new Response("hello", { headers: { "content-type": "text/plain" } });
    } };`);
    await call("a");
    await call("b");
    expect(asked).toEqual([]);
    expect(console[0]?.message).toBe("took 12 -0 1.5 true null undefined 7n Symbol(s)");
  });

  it("each part loads once, on first use, in snapshot and source-compiled isolates alike", async () => {
    for (const snapshot of [true, false]) {
      const { asked, console, call } = await start(
        `export default { async fetch() {
          console.log({ a: [1, 2] });
          const form = await new Response(new URLSearchParams("x=1")).formData();
          const key = await crypto.subtle.importKey("raw", new Uint8Array(16), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
          const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new Uint8Array(1)));
          console.log(form.get("x"), mac.length, crypto.subtle === crypto.subtle);
          return new Response("ok");
        } };`,
        snapshot,
      );
      await call("a");
      await call("b");
      expect(asked.sort()).toEqual(["formData", "inspect", "subtle"]);
      expect(console.map((line) => line.message)).toEqual([
        "{ a: [ 1, 2 ] }",
        "1 32 true",
        "{ a: [ 1, 2 ] }",
        "1 32 true",
      ]);
    }
  });

  it("a function that replaces eval, or defines the part's own names, does not change what loads", async () => {
    const { asked, console, call } = await start(`
      globalThis.eval = () => { throw new Error("hijacked"); };
      globalThis.__hearth_part = "mine"; globalThis.__hearth_shared = "mine";
      export default { fetch() {
        console.log(new Map([["k", 1]]), globalThis.__hearth_part, globalThis.__hearth_shared);
        return new Response("ok");
      } };`);
    await call("a");
    expect(asked).toEqual(["inspect"]);
    expect(console[0]?.message).toBe("Map (1) {'k' => 1} mine mine");
  });
});
