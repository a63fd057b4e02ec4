import type { Consumer, ConsumerMessages } from "@nats-io/jetstream";
import { decodeLogEntry, type LogEntry, type Logger } from "../protocol/index.ts";

/** Lines queued for a slow client before the consumer is no longer pulled from. */
const HIGH_WATER_LINES = 1_000;
/** Messages the ordered consumer pulls at a time. */
const PULL_BATCH = 256;
const encoder = new TextEncoder();
const HEARTBEAT_LINE = encoder.encode(`${JSON.stringify({ type: "heartbeat" })}\n`);

export interface LogFollowOptions {
  /** An ordered consumer on HEARTH_LOGS filtered to one function, created just now. */
  readonly consumer: Consumer;
  /** Messages the consumer held when it was created: the history, of which the last `tail` matches are sent. */
  readonly pending: number;
  readonly tail: number;
  readonly match: (entry: LogEntry) => boolean;
  readonly heartbeatMs: number;
  readonly log: Logger;
}

/** One entry as a line of NDJSON. */
export function ndjsonLine(entry: LogEntry): Uint8Array {
  return encoder.encode(`${JSON.stringify(entry)}\n`);
}

/**
 * The body of a followed log: the tail of the history, then live entries as the consumer delivers
 * them, and a heartbeat line every `heartbeatMs` so the client can tell a quiet function from a dead
 * stream. `return()` (the client went away) stops it at once: the heartbeat ends, the consumer is
 * stopped and deleted on the server, a pending `next()` resolves done.
 */
export class LogFollow implements AsyncIterableIterator<Uint8Array> {
  readonly #options: LogFollowOptions;
  readonly #queue: Uint8Array[] = [];
  #waiter: PromiseWithResolvers<void> | null = null;
  #room: PromiseWithResolvers<void> | null = null;
  #messages: ConsumerMessages | null = null;
  readonly #heartbeat: NodeJS.Timeout;
  #done = false;
  #stopped: Promise<void> | null = null;

  constructor(options: LogFollowOptions) {
    this.#options = options;
    this.#heartbeat = setInterval(() => {
      if (this.#queue.length === 0) this.#push(HEARTBEAT_LINE);
    }, options.heartbeatMs);
    void this.#pump().catch((err: unknown) => {
      if (!this.#done) options.log.warn({ err }, "following a function's logs failed");
      void this.return();
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      const line = this.#queue.shift();
      if (line) {
        if (this.#queue.length < HIGH_WATER_LINES / 2) this.#room?.resolve();
        return { done: false, value: line };
      }
      if (this.#done) return { done: true, value: undefined };
      this.#waiter = Promise.withResolvers<void>();
      await this.#waiter.promise;
    }
  }

  /** Stops following; idempotent. Resolves once the server-side consumer is deleted. */
  return(): Promise<IteratorResult<Uint8Array>> {
    this.#stopped ??= this.#stop();
    return this.#stopped.then(() => ({ done: true, value: undefined }));
  }

  async #stop(): Promise<void> {
    this.#done = true;
    clearInterval(this.#heartbeat);
    this.#queue.length = 0;
    this.#waiter?.resolve();
    this.#room?.resolve();
    this.#messages?.stop();
    await this.#options.consumer.delete().catch(() => {});
  }

  async #pump(): Promise<void> {
    const { consumer, pending, tail, match } = this.#options;
    let seen = 0;
    let history: LogEntry[] | null = [];
    const endHistory = () => {
      for (const entry of history ?? []) this.#push(ndjsonLine(entry));
      history = null;
    };
    if (pending === 0) endHistory();
    this.#messages = await consumer.consume({ max_messages: PULL_BATCH });
    if (this.#done) this.#messages.stop();
    for await (const msg of this.#messages) {
      if (this.#done) break;
      const entry = decodeLogEntry(msg.data);
      seen++;
      if (history) {
        if (entry && match(entry)) {
          history.push(entry);
          if (history.length > tail) history.shift();
        }
        if (seen >= pending) endHistory();
        continue;
      }
      if (!entry || !match(entry)) continue;
      this.#push(ndjsonLine(entry));
      if (this.#queue.length >= HIGH_WATER_LINES) {
        // A slow reader: stop pulling (the consumer waits on the server) until it catches up.
        this.#room = Promise.withResolvers<void>();
        await this.#room.promise;
      }
    }
    // The consumer ended on its own (the connection closed): so does the body, and the client sees it.
    await this.return();
  }

  #push(line: Uint8Array): void {
    if (this.#done) return;
    this.#queue.push(line);
    this.#waiter?.resolve();
  }
}
