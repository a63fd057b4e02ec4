import { type FunctionStore, HearthError, SingleFlight } from "../../protocol/index.ts";

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Function bundles by digest, in memory, least recently used out first. Loading one from the
 * object store took 2–3.5 ms of a cold start (measured in the executor's "function loaded" log), so
 * executors prefetch bundles as deploys happen and a cold start finds its code here.
 */
export class BundleCache {
  readonly #store: FunctionStore;
  readonly #maxBytes: number;
  readonly #entries = new Map<string, string>();
  readonly #loading = new SingleFlight<string, string>();
  #bytes = 0;

  constructor(store: FunctionStore, maxBytes = DEFAULT_MAX_BYTES) {
    this.#store = store;
    this.#maxBytes = maxBytes;
  }

  /** The bundle's code; from memory when cached (and then marked most recently used). */
  async get(digest: string): Promise<string> {
    const cached = this.#entries.get(digest);
    if (cached !== undefined) {
      this.#entries.delete(digest);
      this.#entries.set(digest, cached);
      return cached;
    }
    return this.#loading.run(digest, async () => {
      const bundle = await this.#store.getBundle(digest);
      if (!bundle) throw new HearthError("ERR_INTERNAL", `Bundle ${digest} is missing from the object store`);
      const code = new TextDecoder().decode(bundle);
      this.#remember(digest, code);
      return code;
    });
  }

  /** Loads a bundle in the background; failures are left for a real load to report. */
  prefetch(digest: string): void {
    if (!this.#entries.has(digest)) this.get(digest).catch(() => {});
  }

  #remember(digest: string, code: string): void {
    this.#entries.set(digest, code);
    this.#bytes += code.length;
    for (const [oldest, value] of this.#entries) {
      if (this.#bytes <= this.#maxBytes || oldest === digest) break;
      this.#entries.delete(oldest);
      this.#bytes -= value.length;
    }
  }
}
