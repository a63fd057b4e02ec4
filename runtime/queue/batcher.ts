import type { JsMsg } from "@nats-io/jetstream";

/**
 * Groups messages into batches for `queue()`: a batch goes when it has `size` messages, or
 * `waitMs` after its first message (0: what arrived in the same turn of the event loop, which is
 * what one pull delivers at once). Each message's promise settles when its batch has run.
 */
export class Batcher {
  readonly #size: number;
  readonly #waitMs: number;
  readonly #run: (batch: JsMsg[]) => Promise<void>;
  #pending: { msg: JsMsg; done: PromiseWithResolvers<void> }[] = [];
  /** Cancels the pending flush of a partial batch; null when none is pending. */
  #cancelFlush: (() => void) | null = null;
  /** A batch wait may outlast the ack window (60 s against 30 s): waiting messages get in-progress acks. */
  #keepAlive: NodeJS.Timeout | null = null;
  readonly #ackWaitMs: number;

  constructor(size: number, waitMs: number, ackWaitMs: number, run: (batch: JsMsg[]) => Promise<void>) {
    this.#size = size;
    this.#waitMs = waitMs;
    this.#ackWaitMs = ackWaitMs;
    this.#run = run;
  }

  add(msg: JsMsg): Promise<void> {
    const done = Promise.withResolvers<void>();
    this.#pending.push({ msg, done });
    if (this.#pending.length >= this.#size) this.#flush();
    else if (!this.#cancelFlush) {
      // No wait: what one pull delivered at once goes together (a setTimeout(0) would cost ≥ 1 ms).
      if (this.#waitMs > 0) {
        const timer = setTimeout(() => this.#flush(), this.#waitMs);
        this.#cancelFlush = () => clearTimeout(timer);
      } else {
        const immediate = setImmediate(() => this.#flush());
        this.#cancelFlush = () => clearImmediate(immediate);
      }
      if (this.#waitMs > this.#ackWaitMs / 3) {
        this.#keepAlive = setInterval(() => {
          for (const p of this.#pending) p.msg.working();
        }, this.#ackWaitMs / 3);
      }
    }
    return done.promise;
  }

  #flush(): void {
    this.#cancelFlush?.();
    this.#cancelFlush = null;
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    this.#keepAlive = null;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    this.#run(batch.map((p) => p.msg)).then(
      () => {
        for (const p of batch) p.done.resolve();
      },
      (err: unknown) => {
        for (const p of batch) p.done.reject(err);
      },
    );
  }
}
