/**
 * Defers NATS publishes to the end of the current event-loop turn, so that all messages produced in
 * one turn leave in one socket write. nats.js flushes its outbound buffer on a microtask, which under
 * load means one write() per message: CPU profiles of the gateway and the executor at 64
 * connections put socket writes at 21–26% of their time. setImmediate runs after the poll phase, when
 * every request that arrived in this turn has been handled.
 */
export class WriteCoalescer {
  #queue: Array<() => void> = [];
  #scheduled = false;
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void = () => {}) {
    this.#onError = onError;
  }

  /** Runs `send` at the end of this event-loop turn, in order with the other deferred sends. */
  defer(send: () => void): void {
    this.#queue.push(send);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    const queue = this.#queue;
    this.#queue = [];
    this.#scheduled = false;
    for (const send of queue) {
      try {
        send();
      } catch (err) {
        // One bad message (e.g. over max_payload) must not lose the others or crash the process.
        this.#onError(err);
      }
    }
  };
}
