/**
 * Collapses concurrent calls for the same key into one: callers that arrive while a call for their
 * key is running share its promise (OpenFaaS does this for scale-from-zero). Nothing is cached after
 * the call settles, so a failure is retried by the next caller.
 */
export class SingleFlight<K, V> {
  readonly #inFlight = new Map<K, Promise<V>>();

  run(key: K, call: () => Promise<V>): Promise<V> {
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = call().finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }
}
