import type { JetStreamClient } from "@nats-io/jetstream";
import { type MsgHdrs, headers as natsHeaders } from "@nats-io/transport-node";
import { unavailableWhileDisconnected } from "../gateway/error-response.ts";
import { type HttpRequest, type HttpResponse, jsonResponse, parseJsonBody } from "../gateway/http-types.ts";
import {
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  type AsyncStore,
  HearthError,
  type InvocationStatus,
  STREAMS,
  validateFunctionName,
} from "../protocol/index.ts";

export interface DeadLetterApiDeps {
  readonly asyncStore: AsyncStore;
  /** False while the NATS connection is down: the API answers 503 then. */
  readonly natsConnected: () => boolean;
}

/** One dead letter as `GET /v1/dlq` lists it. */
export interface DeadLetterView {
  /** Its sequence in HEARTH_DLQ: what paging (`after`) and replay (`seqs`) refer to. */
  readonly seq: number;
  readonly function: string;
  /** The invocation id, when it was an async invocation. */
  readonly id?: string;
  /** The trigger id, when it was a trigger event. */
  readonly trigger?: string;
  /** The subject a replay publishes it to. */
  readonly origin: string;
  readonly error: { readonly code: string; readonly message: string };
  readonly attempts: number;
  /** When it was dead-lettered, ISO 8601. */
  readonly time: string;
  readonly bodyBytes: number;
  /** base64, when bodyBytes ≤ 4 KiB: enough to tell events apart without paging megabytes. */
  readonly body?: string;
}

/** `GET /v1/dlq`: `next` is there when more follow (pass it as `after`). */
export interface DeadLetterPage {
  readonly deadLetters: DeadLetterView[];
  readonly next?: number;
}

const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
const INLINE_BODY_BYTES = 4 * 1024;
/**
 * Bounds a fetch that expects messages the consumer counted: it only waits this long if some were
 * deleted (replayed) between the count and the fetch.
 */
const FETCH_EXPIRES_MS = 2_000;
/** What dead-lettering added; a replay takes it off again. */
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  ASYNC_HEADERS.function,
  ASYNC_HEADERS.errorCode,
  ASYNC_HEADERS.errorMessage,
  ASYNC_HEADERS.attempts,
  ASYNC_HEADERS.origin,
]);
/** A replay goes back where dead letters come from: one subject of the async or the trigger stream. */
const REPLAY_PREFIXES = [ASYNC_SUBJECTS.invoke(""), ASYNC_SUBJECTS.trigger("")];
const DEAD_LETTER_PREFIX = ASYNC_SUBJECTS.deadLetter("");

/** A message of the dead-letter stream, however it was read (consumer or get by sequence). */
interface DeadLetterMsg {
  readonly seq: number;
  readonly subject: string;
  readonly headers: MsgHdrs | undefined;
  readonly data: Uint8Array;
  readonly time: Date;
}

interface ReplayTarget {
  readonly seq: number;
  readonly origin: string;
  /** The async invocation whose status a replay sets back to queued. */
  readonly id?: string;
  readonly acceptedAt?: string;
}

/**
 * `GET /v1/dlq?function=&limit=&after=` and `POST /v1/dlq/replay`. Returns null for other paths.
 * Auth is checked by the caller.
 */
export async function handleDeadLetterApi(
  req: HttpRequest,
  path: string,
  deps: DeadLetterApiDeps,
): Promise<HttpResponse | null> {
  const method = path === "/v1/dlq" ? "GET" : path === "/v1/dlq/replay" ? "POST" : null;
  if (method === null) return null;
  if (req.method !== method) throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  const down = unavailableWhileDisconnected(deps);
  if (down) return down;
  if (method === "GET") return jsonResponse(200, await listDeadLetters(deps.asyncStore.js, req.target));
  return jsonResponse(200, { replayed: await replay(deps.asyncStore, parseJsonBody(req.body)) });
}

async function listDeadLetters(js: JetStreamClient, target: string): Promise<DeadLetterPage> {
  const q = target.indexOf("?");
  const query = new URLSearchParams(q < 0 ? "" : target.slice(q + 1));
  const fn = query.get("function");
  const subject = fn === null ? ASYNC_SUBJECTS.allDeadLetters : ASYNC_SUBJECTS.deadLetter(validateFunctionName(fn));
  const after = intParam(query, "after", 0, Number.MAX_SAFE_INTEGER, 0);
  const { messages, more } = await scan(js, subject, after, intParam(query, "limit", 1, MAX_PAGE, DEFAULT_PAGE));
  const last = messages.at(-1);
  return { deadLetters: messages.map(viewOf), ...(more && last ? { next: last.seq } : {}) };
}

/**
 * Up to `limit` dead letters on `subject` after sequence `after`, through an ordered consumer (an
 * ephemeral one the server drops after us; nats-server 2.9 has direct get only on streams that
 * enable it). Its creation counts the matches ahead, so the fetch asks for exactly what is there and
 * never waits out its expiry; each message says how many follow it.
 */
async function scan(
  js: JetStreamClient,
  subject: string,
  after: number,
  limit: number,
  headersOnly = false,
): Promise<{ messages: DeadLetterMsg[]; more: boolean }> {
  const consumer = await js.consumers.get(STREAMS.deadLetters, {
    filter_subjects: subject,
    opt_start_seq: after + 1,
    headers_only: headersOnly,
  });
  try {
    const want = Math.min(limit, (await consumer.info(true)).num_pending);
    const messages: DeadLetterMsg[] = [];
    if (want === 0) return { messages, more: false };
    let pending = 0;
    for await (const msg of await consumer.fetch({ max_messages: want, expires: FETCH_EXPIRES_MS })) {
      messages.push(msg);
      pending = msg.info.pending;
      if (messages.length === want || pending === 0) break;
    }
    // Nothing fetched: what was counted was deleted meanwhile, and nothing follows it either.
    return { messages, more: pending > 0 };
  } finally {
    await consumer.delete().catch(() => {});
  }
}

function viewOf(msg: DeadLetterMsg): DeadLetterView {
  const header = (name: string) => msg.headers?.get(name) || undefined;
  const id = header(ASYNC_HEADERS.id);
  const trigger = header(ASYNC_HEADERS.trigger);
  return {
    seq: msg.seq,
    function: header(ASYNC_HEADERS.function) ?? msg.subject.slice(DEAD_LETTER_PREFIX.length),
    ...(id ? { id } : {}),
    ...(trigger ? { trigger } : {}),
    origin: header(ASYNC_HEADERS.origin) ?? "",
    error: { code: header(ASYNC_HEADERS.errorCode) ?? "", message: header(ASYNC_HEADERS.errorMessage) ?? "" },
    attempts: Number(header(ASYNC_HEADERS.attempts) ?? 0),
    time: msg.time.toISOString(),
    bodyBytes: msg.data.byteLength,
    ...(msg.data.byteLength <= INLINE_BODY_BYTES ? { body: Buffer.from(msg.data).toString("base64") } : {}),
  };
}

/**
 * Puts dead letters back where they came from. Every one asked for is checked before any is
 * replayed, so bad input replays nothing. Each is republished with a msgID of its DLQ sequence (a
 * retried replay within the 2 min dedupe window is stored once), then deleted from the DLQ.
 */
async function replay(store: AsyncStore, body: unknown): Promise<number> {
  const { fn, seqs } = parseReplayRequest(body);
  const targets: ReplayTarget[] = [];
  if (seqs) {
    for (const seq of seqs) {
      const stored = await store.jsm.streams.getMessage(STREAMS.deadLetters, { seq });
      if (!stored) {
        throw new HearthError(
          "ERR_NOT_FOUND",
          `No dead letter ${seq} in ${STREAMS.deadLetters}: replayed already, older than 14 days, or never there`,
        );
      }
      targets.push(targetOf(fn, { seq: stored.seq, subject: stored.subject, headers: stored.header }));
    }
  } else {
    // Headers only: the whole backlog's bodies never sit in memory at once; each is read as it is replayed.
    for (let after = 0, more = true; more; ) {
      const page = await scan(store.js, ASYNC_SUBJECTS.deadLetter(fn), after, MAX_PAGE, true);
      targets.push(...page.messages.map((msg) => targetOf(fn, msg)));
      after = page.messages.at(-1)?.seq ?? after;
      more = page.more;
    }
  }
  let replayed = 0;
  for (const target of targets) if (await replayOne(store, fn, target)) replayed++;
  return replayed;
}

function targetOf(fn: string, msg: Pick<DeadLetterMsg, "seq" | "subject" | "headers">): ReplayTarget {
  const owner = msg.subject.slice(DEAD_LETTER_PREFIX.length);
  if (owner !== fn) throw bad(`Dead letter ${msg.seq} belongs to function ${owner}, not ${fn}`);
  const origin = msg.headers?.get(ASYNC_HEADERS.origin) ?? "";
  const prefix = REPLAY_PREFIXES.find((p) => origin.startsWith(p));
  if (prefix === undefined || !/^[^\s*>]+$/.test(origin.slice(prefix.length))) {
    throw bad(`Dead letter ${msg.seq} has no ${ASYNC_HEADERS.origin} of the async or trigger stream to replay to`);
  }
  const id = msg.headers?.get(ASYNC_HEADERS.id);
  const acceptedAt = msg.headers?.get(ASYNC_HEADERS.acceptedAt);
  return { seq: msg.seq, origin, ...(id ? { id } : {}), ...(acceptedAt ? { acceptedAt } : {}) };
}

/** Replays one dead letter; false when it is gone already (replayed by a concurrent call). */
async function replayOne(store: AsyncStore, fn: string, target: ReplayTarget): Promise<boolean> {
  // Read again rather than kept from the check: up to 1,000 bodies of up to 8 MB are not worth a round trip.
  const stored = await store.jsm.streams.getMessage(STREAMS.deadLetters, { seq: target.seq });
  if (!stored) return false;
  // Queued before it is published: an executor fast enough to write "running" first must not be overwritten.
  if (target.id) await requeue(store, fn, target.id, target.acceptedAt);
  await store.js.publish(target.origin, stored.data, {
    headers: replayHeaders(stored.header),
    msgID: `replay:${target.seq}`,
  });
  await store.jsm.streams.deleteMessage(STREAMS.deadLetters, target.seq);
  return true;
}

/** The original headers without what dead-lettering added, and without JetStream's own (`Nats-*`). */
function replayHeaders(original: MsgHdrs | undefined): MsgHdrs {
  const headers = natsHeaders();
  for (const [name, values] of original ?? []) {
    if (DEAD_LETTER_HEADERS.has(name) || name.toLowerCase().startsWith("nats-")) continue;
    for (const value of values) headers.append(name, value);
  }
  // Max event age (at most 6 h) counts from acceptance: a dead letter kept for days would be dropped
  // again at once. A replay is a new acceptance.
  if (headers.has(ASYNC_HEADERS.acceptedAt)) headers.set(ASYNC_HEADERS.acceptedAt, String(Date.now()));
  return headers;
}

/**
 * Back to queued, as new: no longer dead-lettered, finished or waiting, with no attempts (executors
 * count them from the status, and a replay deserves the function's whole retry budget) and its
 * callback due again. The last error stays until an attempt replaces it.
 */
async function requeue(store: AsyncStore, fn: string, id: string, acceptedAt: string | undefined): Promise<void> {
  const previous: InvocationStatus = (await store.status(id)) ?? {
    // Statuses are kept 24 h, dead letters 14 days: an older one starts a new status.
    id,
    function: fn,
    state: "queued",
    attempts: 0,
    acceptedAt: new Date(Number(acceptedAt) || Date.now()).toISOString(),
  };
  const { deadLettered: _deadLettered, finishedAt: _finishedAt, retryAt: _retryAt, ...kept } = previous;
  const callback = kept.callback && { url: kept.callback.url, state: "pending" as const, attempts: 0 };
  await store.putStatus({ ...kept, state: "queued", attempts: 0, ...(callback ? { callback } : {}) });
}

function parseReplayRequest(body: unknown): { fn: string; seqs?: number[] } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw bad('Body must be a JSON object like {"function": "<fn>", "seqs": [1, 2]}');
  }
  const input = body as Record<string, unknown>;
  if (input.function === undefined) throw bad('function is required: {"function": "<fn>"}');
  const fn = validateFunctionName(input.function);
  const { seqs } = input;
  if (seqs === undefined) return { fn };
  if (
    !Array.isArray(seqs) ||
    seqs.length === 0 ||
    seqs.length > MAX_PAGE ||
    !seqs.every((seq) => Number.isSafeInteger(seq) && seq > 0)
  ) {
    throw bad(`seqs must be a list of 1 to ${MAX_PAGE} dead-letter sequence numbers (positive integers)`);
  }
  return { fn, seqs: [...new Set(seqs as number[])] };
}

function intParam(query: URLSearchParams, name: string, min: number, max: number, fallback: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= min && n <= max))
    throw bad(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}
