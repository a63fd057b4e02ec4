import { nuid } from "@nats-io/transport-node";
import {
  type AsyncStore,
  type AsyncSubmission,
  codeOf,
  type FunctionRecord,
  fingerprintOf,
  type HeaderPairs,
  HearthError,
  type IdempotencyClaim,
  type InvocationState,
  type Logger,
} from "../protocol/index.ts";
import { unavailableWhileDisconnected } from "./error-response.ts";
import { type HttpRequest, type HttpResponse, headerValue, jsonResponse, originOf } from "./http-types.ts";
import { bodyOverLimit, requestHeadFor } from "./invoke-route.ts";

export interface AsyncInvokeDeps {
  readonly asyncStore: AsyncStore;
  /** False while the NATS connection is down: nothing can be stored or read then (see unavailableWhileDisconnected). */
  readonly natsConnected: () => boolean;
  readonly log: Logger;
}

/** The body of a 202 for an async invocation. */
export interface AsyncAccepted {
  readonly id: string;
  readonly status: InvocationState;
  /** Absolute URL of `GET /v1/invocations/<id>`. */
  readonly statusUrl: string;
}

/** One preference of a Prefer header: commas inside a quoted value do not split it (RFC 7240 §2). */
const PREFERENCE = /(?:[^,"]|"(?:[^"\\]|\\.)*")+/g;
/** The respond-async token, case-insensitive, alone or followed by a value or parameters. */
const RESPOND_ASYNC = /^\s*respond-async\s*(?:[=;]|$)/i;
/** draft-ietf-httpapi-idempotency-key-header: a key of 1–255 visible ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const MAX_CALLBACK_URL_CHARS = 2048;

/** Whether the request asks to be answered before it runs: `Prefer: respond-async`, among others or not. */
export function prefersAsync(headers: HeaderPairs): boolean {
  for (const [name, value] of headers) {
    if (name !== "prefer") continue;
    for (const [preference] of value.matchAll(PREFERENCE)) if (RESPOND_ASYNC.test(preference)) return true;
  }
  return false;
}

/**
 * Accepts an async invocation: checks it as a sync one would be checked (body limit, request head),
 * stores it (AsyncStore.submit) and only then answers 202, so a 202 is a promise kept even if this
 * gateway dies the next moment. With an Idempotency-Key, a retry of the same request gets the same
 * id and nothing is stored again. `mounted`: see requestHeadFor.
 */
export async function acceptAsync(
  deps: AsyncInvokeDeps,
  record: FunctionRecord,
  req: HttpRequest,
  rest: string,
  mounted = true,
): Promise<HttpResponse> {
  const tooLarge = bodyOverLimit(record, req);
  if (tooLarge) return tooLarge;
  const key = idempotencyKeyOf(req);
  const callbackUrl = callbackUrlOf(req);
  const head = requestHeadFor(req, record.name, rest, mounted);
  const down = unavailableWhileDisconnected(deps);
  if (down) return down;
  const submission: AsyncSubmission = {
    id: nuid.next(),
    fn: record.name,
    requestJson: JSON.stringify(head),
    body: req.body,
    acceptedAt: Date.now(),
    ...(callbackUrl !== undefined ? { callbackUrl } : {}),
  };
  if (key === undefined) return acceptedResponse(req, mounted, await submit(deps.asyncStore, submission));
  // Over the target as the function sees it: /fn/a/x and a.fn.example/x with one key are one request.
  const fingerprint = fingerprintOf(req.method, rest, headerValue(req, "content-type") ?? "", req.body);
  return acceptedResponse(req, mounted, await submitOnce(deps, submission, key, fingerprint));
}

/** What was accepted: a new invocation, or (`replayed`) the one an Idempotency-Key already names. */
interface Accepted {
  readonly id: string;
  readonly state: InvocationState;
  readonly replayed: boolean;
}

async function submit(store: AsyncStore, submission: AsyncSubmission): Promise<Accepted> {
  await unavailableOnFailure(store.submit(submission));
  return { id: submission.id, state: "queued", replayed: false };
}

/**
 * Submits under an Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): the first request
 * with the key claims it, submits, and confirms the claim; a later one with the same payload gets
 * that invocation, one with another payload 422, and one while the first is still being accepted 409.
 */
async function submitOnce(
  deps: AsyncInvokeDeps,
  submission: AsyncSubmission,
  key: string,
  fingerprint: string,
): Promise<Accepted> {
  const { asyncStore: store } = deps;
  const { fn, id, acceptedAt } = submission;
  const found = await unavailableOnFailure(store.claim(fn, key, fingerprint, id, acceptedAt));
  if (found.kind === "existing") {
    const { claim } = found;
    if (claim.fingerprint !== fingerprint) {
      throw new HearthError(
        "ERR_IDEMPOTENCY_KEY_REUSED",
        "This Idempotency-Key was used within 24 h for a request with another method, path, content-type or body; use a fresh key",
      );
    }
    if (claim.state === "accepting") {
      throw new HearthError(
        "ERR_IDEMPOTENCY_IN_PROGRESS",
        "A request with this Idempotency-Key is still being accepted",
      );
    }
    const status = await unavailableOnFailure(store.status(claim.id));
    return { id: claim.id, state: status?.state ?? "queued", replayed: true };
  }
  try {
    await store.submit(submission);
  } catch (err) {
    await store.releaseClaim(fn, key, found.revision);
    throw unavailable(err);
  }
  const mine: IdempotencyClaim = { id, fingerprint, state: "accepting", at: acceptedAt };
  await store.confirmClaim(fn, key, mine, found.revision).catch((err) => {
    // The invocation is stored, so the 202 stands; a retry within 30 s gets 409, a later one a second copy.
    deps.log.warn({ err, fn, invocationId: id }, "could not confirm an Idempotency-Key claim");
  });
  return { id, state: "queued", replayed: false };
}

function acceptedResponse(req: HttpRequest, mounted: boolean, { id, state, replayed }: Accepted): HttpResponse {
  const path = `/v1/invocations/${id}`;
  // On a function's own host (`hello.fn.example`) every path is the function's: the API is on the
  // functions domain itself, and the Location must say so in full.
  const origin = mounted ? originOf(req) : originOf(req).replace(/^(http:\/\/)[^.]+\./, "$1");
  const statusUrl = `${origin}${path}`;
  const headers: HeaderPairs = [
    ["x-hearth-id", id],
    ["location", mounted ? path : statusUrl],
    ["preference-applied", "respond-async"],
  ];
  if (replayed) headers.push(["idempotent-replayed", "true"]);
  const body: AsyncAccepted = { id, status: state, statusUrl };
  return jsonResponse(202, body, headers);
}

/** The Idempotency-Key, unquoted when sent as a structured-field string (`"abc"`, as the draft writes it). */
function idempotencyKeyOf(req: HttpRequest): string | undefined {
  const raw = headerValue(req, "idempotency-key");
  if (raw === undefined) return undefined;
  const key = /^"[^"\\]+"$/.test(raw) ? raw.slice(1, -1) : raw;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw new HearthError("ERR_BAD_REQUEST", "Idempotency-Key must be 1-255 visible ASCII characters (no spaces)");
  }
  return key;
}

/** X-Callback-Url: where the worker that ran the invocation POSTs its result, under the egress policy. */
function callbackUrlOf(req: HttpRequest): string | undefined {
  const raw = headerValue(req, "x-callback-url");
  if (raw === undefined) return undefined;
  const url = raw.length <= MAX_CALLBACK_URL_CHARS ? URL.parse(raw) : null;
  // Credentials in the URL would be stored in the status record and shown by the status API.
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password) {
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `X-Callback-Url must be an absolute http(s) URL of at most ${MAX_CALLBACK_URL_CHARS} characters without credentials`,
    );
  }
  return url.href;
}

/** A store operation whose failure means "not stored, retry": 503 with Retry-After. */
async function unavailableOnFailure<T>(operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (err) {
    throw unavailable(err);
  }
}

function unavailable(err: unknown): unknown {
  if (codeOf(err) !== "ERR_INTERNAL") return err; // already says what went wrong (e.g. the claim's own 503)
  return new HearthError("ERR_UNAVAILABLE", "The invocation could not be stored; retry shortly", { cause: err });
}
