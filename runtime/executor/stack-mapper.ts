import { type Logger, SingleFlight, silentLogger } from "../../protocol/index.ts";
import { scriptNameOf } from "../isolate/function-isolate.ts";
import { mapStack, type ParsedSourceMap, parseSourceMap } from "../isolate/map-stack.ts";

/** Where source maps are read from: the bundle cache (same object store, checked against their digest). */
export interface SourceMapSource {
  get(digest: string): Promise<string>;
}

/** The function a stack came from: its name and its version's source map, if it has one. */
export interface MappedFunction {
  readonly name: string;
  readonly sourceMapDigest?: string;
}

/**
 * Parsed maps kept per executor. A parsed map holds its decoded mappings (a few MB for a large
 * bundle), and only functions that are throwing need one, so few are kept.
 */
export const DEFAULT_KEPT_MAPS = 16;

/**
 * Maps function stacks to their original sources. Maps are read and parsed on the first stack that
 * needs one, never on a cold start or a successful request: a version's map costs nothing until it
 * throws. A map that cannot be read leaves stacks as they are (logged once per attempt).
 */
export class StackMapper {
  readonly #source: SourceMapSource;
  readonly #log: Logger;
  readonly #keep: number;
  readonly #maps = new Map<string, ParsedSourceMap>();
  readonly #loading = new SingleFlight<string, ParsedSourceMap | null>();

  constructor(options: { source: SourceMapSource; log?: Logger; keep?: number }) {
    this.#source = options.source;
    this.#log = options.log ?? silentLogger();
    this.#keep = options.keep ?? DEFAULT_KEPT_MAPS;
  }

  /** `stack` with the function's frames mapped to `src/x.ts:line:col`; as it is when there is no map. */
  async map(fn: MappedFunction, stack: string): Promise<string> {
    if (fn.sourceMapDigest === undefined) return stack;
    const map = await this.#mapOf(fn.sourceMapDigest);
    return map ? mapStack(stack, scriptNameOf(fn.name), map) : stack;
  }

  async #mapOf(digest: string): Promise<ParsedSourceMap | null> {
    const kept = this.#maps.get(digest);
    if (kept) {
      this.#maps.delete(digest);
      this.#maps.set(digest, kept); // most recently used last
      return kept;
    }
    return this.#loading.run(digest, async () => {
      try {
        const map = parseSourceMap(await this.#source.get(digest));
        this.#maps.set(digest, map);
        for (const oldest of this.#maps.keys()) {
          if (this.#maps.size <= this.#keep) break;
          this.#maps.delete(oldest);
        }
        return map;
      } catch (err) {
        this.#log.warn({ err, sourceMapDigest: digest }, "source map unreadable: stack left unmapped");
        return null;
      }
    });
  }
}
