import remapping from "@jridgewell/remapping";
import { decodedMappings, type EncodedSourceMap, TraceMap } from "@jridgewell/trace-mapping";
import { HearthError, LIMITS } from "../protocol/index.ts";

function invalid(message: string, cause?: unknown): HearthError {
  return new HearthError("ERR_INVALID_SOURCE_MAP", `sourceMap ${message}`, cause === undefined ? {} : { cause });
}

/**
 * Checks a deploy's source map against the code it maps (the uploaded `code`): a version 3 map
 * (https://tc39.es/ecma426/) of at most LIMITS.maxSourceMapBytes, whose every mapping names a source
 * it lists and a line of the code. Returns it parsed.
 *
 * @throws HearthError ERR_PAYLOAD_TOO_LARGE over the size bound, ERR_INVALID_SOURCE_MAP naming what is wrong
 */
export function validateSourceMap(json: string, code: string): TraceMap {
  if (Buffer.byteLength(json) > LIMITS.maxSourceMapBytes) {
    throw new HearthError("ERR_PAYLOAD_TOO_LARGE", `sourceMap is over the ${LIMITS.maxSourceMapBytes} byte limit`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw invalid(`is not JSON: ${(err as Error).message}`, err);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw invalid("must be a JSON object");
  const map = raw as Record<string, unknown>;
  if (map.version !== 3) throw invalid(`version must be 3, got ${JSON.stringify(map.version)}`);
  // An index map (`sections`) is valid in the spec, but esbuild never writes one.
  if ("sections" in map) throw invalid("must be a flat map, not an index map with sections");
  if (typeof map.mappings !== "string") throw invalid("mappings must be a string");
  if (!isArrayOf(map.sources, (s) => typeof s === "string" || s === null)) throw invalid("sources must be strings");
  if (map.names !== undefined && !isArrayOf(map.names, (s) => typeof s === "string")) {
    throw invalid("names must be strings");
  }
  if (
    map.sourcesContent !== undefined &&
    (!isArrayOf(map.sourcesContent, (s) => typeof s === "string" || s === null) ||
      map.sourcesContent.length !== map.sources.length)
  ) {
    throw invalid("sourcesContent must hold one string (or null) per source");
  }
  let traced: TraceMap;
  try {
    traced = new TraceMap(map as unknown as EncodedSourceMap);
  } catch (err) {
    throw invalid(`cannot be read: ${(err as Error).message}`, err);
  }
  checkSegments(traced, map.sources.length, map.names?.length ?? 0, countLines(code));
  return traced;
}

/** Every segment must name a source and name the map lists, and a line the code has. */
function checkSegments(map: TraceMap, sources: number, names: number, lines: number): void {
  const decoded = decodedMappings(map);
  if (decoded.length > lines) {
    throw invalid(`maps ${decoded.length} lines but the code has ${lines}: it belongs to other code`);
  }
  for (const [line, segments] of decoded.entries()) {
    for (const segment of segments) {
      if (segment.length === 1) continue;
      const [column, source, originalLine, originalColumn, name] = segment as number[];
      const bad =
        [column, source, originalLine, originalColumn].some((n) => n === undefined || !Number.isInteger(n) || n < 0) ||
        (source as number) >= sources ||
        (name !== undefined && (name < 0 || name >= names));
      if (bad) throw invalid(`has a bad mapping on generated line ${line + 1}: ${JSON.stringify(segment)}`);
    }
  }
}

/**
 * One map from the script workers run back to the original sources, through the steps between:
 * `maps` from the last step to the first, each step's map having the one source the step read
 * (the uploaded map comes last and may have many).
 */
export function composeSourceMaps(maps: readonly (string | TraceMap)[]): string {
  return remapping([...maps], () => null).toString();
}

function isArrayOf(value: unknown, test: (item: unknown) => boolean): value is unknown[] {
  return Array.isArray(value) && value.every(test);
}

function countLines(code: string): number {
  let lines = 1;
  for (let i = code.indexOf("\n"); i !== -1; i = code.indexOf("\n", i + 1)) lines++;
  return lines;
}
