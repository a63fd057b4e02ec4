import type { Msg } from "@nats-io/transport-node";
import {
  decodeChunk,
  encodePull,
  HearthError,
  NoReplyError,
  noReplyFailure,
  type RequestMux,
} from "../protocol/index.ts";

/**
 * Pulls in flight per streamed body: the gateway holds at most this many chunks (64 KiB each) ahead
 * of its client, and the executor reads the function's stream no further. Measured for 20 MiB
 * through the gateway's socket (docs/architecture.md, "Streaming bodies"): 1 in flight took 640 ms,
 * 4 took 215 ms, 8 took 216 ms; 4 bounds what a slow client costs to 256 KiB here and there.
 */
export const PULL_WINDOW = 4;

export interface StreamedBodyOptions {
  readonly mux: RequestMux;
  /** Where the executor that holds the body takes its pulls (SUBJECTS.bodyPull). */
  readonly subject: string;
  /** The executor's id: its death fails the pulls in flight (RequestMux groups). */
  readonly group: string;
  readonly token: string;
  readonly fn: string;
  /** How long one pull may wait for the function to produce its chunk. */
  readonly timeoutMs: number;
  /** Tells the executor to stop the body (the client went away). */
  readonly cancel: () => void;
}

/**
 * The rest of a response body, pulled from its executor as the HTTP client takes it (node-server's
 * sendStream asks for the next chunk only once the socket drained). Iterating it ends normally at the
 * body's end; a body cut by the function, a limit or the executor's death rejects with a HearthError,
 * and the server then resets the response. `return()` (the client left) cancels the body at once.
 */
export class StreamedBody implements AsyncIterableIterator<Uint8Array> {
  readonly #o: StreamedBodyOptions;
  readonly #pulls: Promise<Msg>[] = [];
  #seq = 0;
  #done = false;

  constructor(options: StreamedBodyOptions) {
    this.#o = options;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#done) return { done: true, value: undefined };
    while (this.#pulls.length < PULL_WINDOW) {
      const pull = this.#o.mux.request(this.#o.subject, new Uint8Array(0), {
        headers: encodePull(this.#o.token, this.#seq++),
        timeoutMs: this.#o.timeoutMs,
        group: this.#o.group,
      });
      pull.catch(() => {}); // a pull past the end, or one left when the body is cut, is not read
      this.#pulls.push(pull);
    }
    let chunk: Uint8Array | null;
    try {
      chunk = decodeChunk(await (this.#pulls.shift() as Promise<Msg>));
    } catch (err) {
      this.#finish(false);
      if (err instanceof NoReplyError && err.reason !== "no-responders") {
        const failure = noReplyFailure(err.reason, this.#o.fn, this.#o.timeoutMs);
        throw new HearthError(failure.code, failure.message, { cause: err });
      }
      throw err;
    }
    if (chunk === null) {
      this.#finish(true);
      return { done: true, value: undefined };
    }
    return { done: false, value: chunk };
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    this.#finish(false);
    return { done: true, value: undefined };
  }

  #finish(ended: boolean): void {
    if (this.#done) return;
    this.#done = true;
    this.#pulls.length = 0;
    if (!ended) this.#o.cancel();
  }
}
