/**
 * A response body that goes on after the reply: the gateway pulls it a chunk at a time from the
 * executor. Each pull is a request to `hearth.x.<node>.<pid>.<fn>.pull` (SUBJECTS.bodyPull) with
 * `hearth-pull: <token>.<seq>`, answered by exactly one message: a chunk, the end
 * (`hearth-end`), or an error (`hearth-error`). NATS core has no flow control of its own; a pull per
 * chunk, with a few in flight, is a credit window: the executor reads the function's stream only as
 * far as the gateway asked, and the gateway asks only as its client drains. One reply per request
 * also keeps the executor within `allow_responses` (one response per request by default).
 */
import { type Msg, type MsgHdrs, headers as natsHeaders } from "@nats-io/transport-node";
import { HearthError, isErrorCode } from "./errors.ts";
import { HEADERS } from "./subjects.ts";

const CANCEL = "cancel";

/** What a message to SUBJECTS.bodyPull asks of a streaming body. */
export type BodyPull =
  | { readonly token: string; readonly seq: number; readonly cancel?: undefined }
  | { readonly token: string; readonly cancel: true };

/** Headers of a pull of chunk `seq` (0, 1, 2, ...) of body `token`. */
export function encodePull(token: string, seq: number): MsgHdrs {
  const h = natsHeaders();
  h.set(HEADERS.pull, `${token}.${seq}`);
  return h;
}

/** Headers of "stop body `token`" (published, not a request: it has no answer). */
export function encodeCancel(token: string): MsgHdrs {
  const h = natsHeaders();
  h.set(HEADERS.pull, `${token}.${CANCEL}`);
  return h;
}

/** The pull a message carries, or null when it has no hearth-pull header (refused by its caller). */
export function decodePull(msg: Msg): BodyPull | null {
  const value = msg.headers?.get(HEADERS.pull);
  if (!value) return null;
  const dot = value.lastIndexOf(".");
  const token = value.slice(0, dot);
  const rest = value.slice(dot + 1);
  if (dot <= 0) throw new HearthError("ERR_BAD_REQUEST", `Malformed ${HEADERS.pull} header ${JSON.stringify(value)}`);
  if (rest === CANCEL) return { token, cancel: true };
  const seq = Number(rest);
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new HearthError("ERR_BAD_REQUEST", `Malformed ${HEADERS.pull} header ${JSON.stringify(value)}`);
  }
  return { token, seq };
}

/** Headers of the reply that ends a body. */
export function encodeEnd(): MsgHdrs {
  const h = natsHeaders();
  h.set(HEADERS.end, "1");
  return h;
}

/**
 * A pull's reply: the chunk (copied: the client reuses its read buffer), or null at the end. An error
 * reply throws a HearthError with its code.
 */
export function decodeChunk(msg: Msg): Uint8Array | null {
  const h = msg.headers;
  if (h) {
    const code = h.get(HEADERS.error);
    if (code) {
      const { message } = msg.json<{ message: string }>();
      throw new HearthError(isErrorCode(code) ? code : "ERR_INTERNAL", message);
    }
    if (h.get(HEADERS.end)) return null;
  }
  return new Uint8Array(msg.data);
}
