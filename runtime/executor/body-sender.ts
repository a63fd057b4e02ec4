import type { Msg, MsgHdrs } from "@nats-io/transport-node";
import { codeOf, type ErrorCode, encodeEnd, encodeErrorReply } from "../../protocol/index.ts";
import type { ResponseBody } from "../isolate/response-body.ts";

/** Sends one message now or at the end of this turn; the sender counts bytes until it has gone. */
export type Respond = (msg: Msg, data: Uint8Array, headers: MsgHdrs | undefined, sent: () => void) => void;

/** Bytes of streamed bodies read from isolates and not yet handed to NATS, over a transport. */
export class StreamedBytes {
  buffered = 0;
  /** The most `buffered` has been: what a slow reader made this process hold at worst. */
  peak = 0;

  add(bytes: number): void {
    this.buffered += bytes;
    if (this.buffered > this.peak) this.peak = this.buffered;
  }
}

/**
 * Serves the pulls of one streamed response body (protocol/body-stream.ts): each pull, in order,
 * gets the next chunk the function produces. The body is read only while a pull waits, so this
 * process holds at most one chunk per pull in flight, however slowly the gateway's client reads.
 */
export class BodySender {
  readonly #body: ResponseBody;
  readonly #respond: Respond;
  readonly #bytes: StreamedBytes;
  readonly #pulls: Msg[] = [];
  #expectedSeq = 0;
  #pumping = false;
  /** Set once the body has ended or failed: what every later pull is answered with. */
  #final: { headers: MsgHdrs; data: Uint8Array } | null = null;

  constructor(body: ResponseBody, respond: Respond, bytes: StreamedBytes) {
    this.#body = body;
    this.#respond = respond;
    this.#bytes = bytes;
  }

  /** A pull of chunk `seq`: out of order means a pull was lost, and the body is cut. */
  pull(msg: Msg, seq: number): void {
    if (seq !== this.#expectedSeq++) {
      this.#fail("ERR_BAD_REQUEST", `Pull ${seq} arrived out of order`);
    }
    this.#pulls.push(msg);
    void this.#pump();
  }

  /** The gateway went away from this body: the function's stream is cancelled. */
  cancel(): void {
    this.#fail("ERR_BAD_REQUEST", "The body was cancelled"); // which cancels the function's stream
  }

  #fail(code: ErrorCode, message: string): void {
    if (this.#final) return;
    const [headers, data] = encodeErrorReply(code, message);
    this.#final = { headers, data };
    this.#body.cancel();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#pulls.length > 0) {
        if (!this.#final) {
          const chunk = await this.#read();
          if (chunk !== null) {
            this.#bytes.add(chunk.byteLength);
            this.#respond(this.#pulls.shift() as Msg, chunk, undefined, () => {
              this.#bytes.buffered -= chunk.byteLength;
            });
            continue;
          }
          this.#final ??= { headers: encodeEnd(), data: new Uint8Array(0) };
        }
        this.#respond(this.#pulls.shift() as Msg, this.#final.data, this.#final.headers, () => {});
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** The next non-empty chunk, or null at the end or once the body failed (#final says how). */
  async #read(): Promise<Uint8Array | null> {
    try {
      for (;;) {
        const chunk = await this.#body.read();
        if (chunk === null || chunk.byteLength > 0) return chunk;
      }
    } catch (err) {
      this.#fail(codeOf(err), err instanceof Error ? err.message : String(err));
      return null;
    }
  }
}
