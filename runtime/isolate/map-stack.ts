import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";

/** A parsed source map, ready for lookups (decoding happens once, here). */
export type ParsedSourceMap = TraceMap;

/** Parses a source map's JSON for {@link mapStack}; throws on JSON that is not a source map. */
export function parseSourceMap(json: string): ParsedSourceMap {
  return new TraceMap(json);
}

/** Where the host frames begin in an error isolated-vm rethrows: nothing past it is the function's. */
const ISOLATE_BOUNDARY = "\n    at (<isolated-vm boundary>)";

/**
 * Rewrites the frames of `stack` that point into the function's script (`<scriptName>:line:column`,
 * the file name the isolate compiled it under) to the original `source:line:column` the source map
 * names, e.g. `at inner (hello.js:25:11)` → `at inner (src/lib.ts:3:11)`. A frame in the script at a
 * position the map does not cover is dropped: that is the wrapper Hearth put around the module (the
 * classic-script IIFE), not code of the function's. Other frames (the bootstrap's) are kept as they
 * are. V8 columns are 1-based, the map's 0-based (Source Map spec, https://tc39.es/ecma426/).
 */
export function mapStack(stack: string, scriptName: string, map: ParsedSourceMap): string {
  // Only a whole file name: a function named "bootstrap" must not match `hearth:bootstrap.js:13:5`.
  const position = new RegExp(`(?<=[\\s(])${escapeRegExp(scriptName)}:(\\d+):(\\d+)`, "g");
  const lines: string[] = [];
  for (const line of withoutHostFrames(stack).split("\n")) {
    let unmapped = false;
    const mapped = line.replace(position, (whole, row: string, column: string) => {
      const original = originalPositionFor(map, { line: Number(row), column: Number(column) - 1 });
      if (original.source === null || original.line === null || original.column === null) {
        unmapped = true;
        return whole;
      }
      return `${original.source}:${original.line}:${original.column + 1}`;
    });
    if (!(unmapped && FRAME.test(line))) lines.push(mapped);
  }
  return lines.join("\n");
}

/** A stack frame line, as V8 writes it. */
const FRAME = /^\s+at /;

/** The stack as the function saw it: the frames isolated-vm adds on the host side are cut. */
export function withoutHostFrames(stack: string): string {
  const boundary = stack.indexOf(ISOLATE_BOUNDARY);
  return boundary === -1 ? stack : stack.slice(0, boundary);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
