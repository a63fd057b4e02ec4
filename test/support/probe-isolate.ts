import type { FunctionIsolate } from "../../runtime/index.ts";
import { type ConsoleLine, isolateFor, requestJson, type TestFunctionOptions, text } from "./isolate.ts";

/** Runs named probes (async functions of function code) in one real isolate and returns their JSON results. */
export interface IsolateProber {
  readonly isolate: FunctionIsolate;
  /** Every console line the probes printed, in order. */
  readonly console: readonly ConsoleLine[];
  /** Invokes `probes[name](request)` in the isolate; a probe that throws fails the call with its stack. */
  probe(name: string, body?: string): Promise<unknown>;
}

/**
 * Starts a function whose source is `probesSource` (which must declare `const probes = { ... }`),
 * routed by path: GET /name runs `probes.name(request)` and answers its result as JSON.
 */
export async function startProber(probesSource: string, options: TestFunctionOptions = {}): Promise<IsolateProber> {
  const source = `${probesSource}
export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    return Response.json(await probes[name](request));
  },
};`;
  const { isolate, console } = await isolateFor(source, options);
  return {
    isolate,
    console,
    async probe(name, body) {
      const out = await isolate.invoke(
        name,
        requestJson(`http://fn.test/${name}`, body === undefined ? "GET" : "POST"),
        body === undefined ? null : new TextEncoder().encode(body),
      );
      if (!out.ok) throw new Error(`${name}: ${out.code} ${out.message} ${out.detail?.stack ?? ""}`);
      return JSON.parse(text(out.body));
    },
  };
}
