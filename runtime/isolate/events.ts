/**
 * The host side of queue() and scheduled() invocations. An event goes through the same
 * `invoke(id, requestJson, body)` as a request, and its outcome comes back as an ordinary response
 * whose body is JSON (see bootstrap/events.ts), so limits, checks and console attribution are those
 * of fetch. That JSON was built inside the isolate, where function code can tamper with what builds
 * it: it is read strictly, and anything off means "retry every message".
 */
import type { ErrorCode } from "../../protocol/index.ts";
import {
  type HostMessage,
  type HostQueueEvent,
  type HostScheduledEvent,
  MAX_RETRY_DELAY_SECONDS,
  type QueueDecision,
} from "./bootstrap/events.ts";
import type { InvokeOutcome } from "./function-isolate.ts";

export type { QueueDecision };

/** One message to deliver. `contentType` is Cloudflare's ("json", the default, "text", "bytes", "v8"). */
export interface QueueMessageInput {
  readonly id: string;
  /** When the message was sent, in ms since the epoch. */
  readonly timestamp: number;
  /** 1 on first delivery. */
  readonly attempts: number;
  readonly body: Uint8Array;
  readonly contentType?: string;
}

/** Why an event did not (wholly) succeed, for the logs. */
export interface EventError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly name?: string;
  readonly stack?: string;
}

export interface QueueResult {
  /** One per id, in the order of the ids given to decodeQueueOutcome. */
  readonly decisions: readonly QueueDecision[];
  /** The handler threw, or the invocation failed: messages it had not decided are retried. */
  readonly error?: EventError;
}

export type ScheduledResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly noRetry: boolean; readonly error: EventError };

/**
 * The arguments of `invoke` for a batch: payloads are concatenated into one body, so a batch
 * crosses into the isolate as one copy, and each message names its slice.
 *
 * @example
 * const { requestJson, body } = encodeQueueEvent("orders", msgs);
 * const result = decodeQueueOutcome(await pool.invoke(id, requestJson, body), msgs.map((m) => m.id));
 */
export function encodeQueueEvent(
  queue: string,
  messages: readonly QueueMessageInput[],
): { requestJson: string; body: Uint8Array } {
  const body = new Uint8Array(messages.reduce((sum, m) => sum + m.body.byteLength, 0));
  let offset = 0;
  const heads = messages.map(({ id, timestamp, attempts, body: bytes, contentType }) => {
    body.set(bytes, offset);
    const head: HostMessage = { id, timestamp, attempts, offset, length: bytes.byteLength, contentType };
    offset += bytes.byteLength;
    return head;
  });
  const event: HostQueueEvent = { event: "queue", queue, messages: heads };
  return { requestJson: JSON.stringify(event), body };
}

/** The arguments of `invoke` for a cron tick due at `scheduledTime` (ms since the epoch). */
export function encodeScheduledEvent(cron: string, scheduledTime: number): { requestJson: string; body: null } {
  const event: HostScheduledEvent = { event: "scheduled", cron, scheduledTime };
  return { requestJson: JSON.stringify(event), body: null };
}

/** Exactly one decision per id in `ids` (the batch's, in order), whatever came back. */
export function decodeQueueOutcome(outcome: InvokeOutcome, ids: readonly string[]): QueueResult {
  if (!outcome.ok) return retryAll(ids, failureOf(outcome));
  const json = parseBody(outcome) as { outcomes?: unknown; error?: unknown } | null;
  const decisions = readDecisions(json?.outcomes, ids);
  const error = json?.error === undefined ? undefined : readThrown(json.error);
  if (!decisions || error === null) return retryAll(ids, malformed("queue"));
  return error ? { decisions, error } : { decisions };
}

export function decodeScheduledOutcome(outcome: InvokeOutcome): ScheduledResult {
  if (!outcome.ok) return { ok: false, noRetry: false, error: failureOf(outcome) };
  const json = parseBody(outcome) as { ok?: unknown; noRetry?: unknown; error?: unknown } | null;
  if (json?.ok === true) return { ok: true };
  const error = readThrown(json?.error);
  if (json?.ok !== false || typeof json.noRetry !== "boolean" || !error) {
    return { ok: false, noRetry: false, error: malformed("scheduled") };
  }
  return { ok: false, noRetry: json.noRetry, error };
}

function retryAll(ids: readonly string[], error: EventError): QueueResult {
  return { decisions: ids.map((id) => ({ id, action: "retry" })), error };
}

function failureOf(outcome: Extract<InvokeOutcome, { ok: false }>): EventError {
  return { code: outcome.code, message: outcome.message, ...outcome.detail };
}

function malformed(kind: "queue" | "scheduled"): EventError {
  return { code: "ERR_INVALID_RESPONSE", message: `The ${kind}() outcome from the isolate is malformed` };
}

function parseBody(outcome: Extract<InvokeOutcome, { ok: true }>): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(outcome.body));
  } catch {
    return null;
  }
}

/** Fresh objects with only the known fields: nothing else the isolate sent travels further. */
function readDecisions(value: unknown, ids: readonly string[]): QueueDecision[] | null {
  if (!Array.isArray(value) || value.length !== ids.length) return null;
  const decisions: QueueDecision[] = [];
  for (const [i, id] of ids.entries()) {
    const d = value[i] as { id?: unknown; action?: unknown; delaySeconds?: unknown } | null;
    if (typeof d !== "object" || d === null || d.id !== id) return null;
    const { action, delaySeconds } = d;
    if (action === "ack" && delaySeconds === undefined) decisions.push({ id, action });
    else if (action === "retry" && delaySeconds === undefined) decisions.push({ id, action });
    else if (action === "retry" && isDelay(delaySeconds)) decisions.push({ id, action, delaySeconds });
    else return null;
  }
  return decisions;
}

function isDelay(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_RETRY_DELAY_SECONDS;
}

/** What the handler threw, as the bootstrap reports it; null when it is not that shape. */
function readThrown(value: unknown): EventError | null {
  const e = value as { name?: unknown; message?: unknown; stack?: unknown } | null;
  if (typeof e !== "object" || e === null || typeof e.message !== "string") return null;
  if (!(e.name === undefined || typeof e.name === "string")) return null;
  if (!(e.stack === undefined || typeof e.stack === "string")) return null;
  return { code: "ERR_FUNCTION_THREW", message: e.message, name: e.name, stack: e.stack };
}
