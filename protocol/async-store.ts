import { createHash } from "node:crypto";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { type NatsConnection, nanos, headers as natsHeaders } from "@nats-io/transport-node";
import {
  ASYNC_BUCKETS,
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  IDEMPOTENCY_TTL_MS,
  type IdempotencyClaim,
  INLINE_RESULT_BYTES,
  type InvocationStatus,
  RESULT_RETENTION_MS,
  type StoredResponse,
} from "./async.ts";
import { ensureAsyncStreams } from "./async-streams.ts";
import { HearthError } from "./errors.ts";
import type { ResponseHead } from "./invocation.ts";
import { isKeyConflict, JetStreamMux, JetStreamPublishError, WRONG_LAST_SEQUENCE } from "./jetstream-mux.ts";

/** An invocation as the gateway accepts it. */
export interface AsyncSubmission {
  readonly id: string;
  readonly fn: string;
  /** RequestHead JSON, as the function will see the request. */
  readonly requestJson: string;
  readonly body: Uint8Array;
  readonly callbackUrl?: string;
  readonly acceptedAt: number;
}

/** What claiming an Idempotency-Key found. */
export type ClaimResult =
  | { readonly kind: "claimed"; readonly revision: number }
  | { readonly kind: "existing"; readonly claim: IdempotencyClaim; readonly revision: number };

/** A claim left "accepting" this long was abandoned (its gateway died mid-accept): another may take it over. */
const ABANDONED_CLAIM_MS = 30_000;

/**
 * The async side of Hearth's state in JetStream: the streams (async, triggers, dead letters), the
 * invocation statuses, large results, and Idempotency-Key claims. Every process that accepts, runs
 * or inspects async invocations opens one.
 */
export class AsyncStore {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly #statuses: KV;
  readonly #claims: KV;
  readonly #results: ObjectStore;
  /** The hot writes (submits, status updates) go through the request multiplexer. */
  readonly #publisher: JetStreamMux;

  private constructor(
    js: JetStreamClient,
    jsm: JetStreamManager,
    statuses: KV,
    claims: KV,
    results: ObjectStore,
    publisher: JetStreamMux,
  ) {
    this.js = js;
    this.jsm = jsm;
    this.#statuses = statuses;
    this.#claims = claims;
    this.#results = results;
    this.#publisher = publisher;
  }

  /** Creates whatever is missing (idempotent) and opens it. */
  static async open(nc: NatsConnection): Promise<AsyncStore> {
    const jsm = await jetstreamManager(nc);
    const kvm = new Kvm(nc);
    const [, statuses, claims, results] = await Promise.all([
      ensureAsyncStreams(jsm),
      kvm.create(ASYNC_BUCKETS.invocations, { history: 1, ttl: RESULT_RETENTION_MS }),
      kvm.create(ASYNC_BUCKETS.idempotency, { history: 1, ttl: IDEMPOTENCY_TTL_MS }),
      new Objm(nc).create(ASYNC_BUCKETS.results, { ttl: nanos(RESULT_RETENTION_MS) }),
    ]);
    return new AsyncStore(jetstream(nc), jsm, statuses, claims, results, new JetStreamMux(nc));
  }

  /**
   * Stores an invocation durably: its "queued" status and its message in the async stream, written
   * side by side. Resolves once JetStream has acknowledged both, so a 202 after it is a promise kept.
   * The message id is the invocation id: a retried publish (gateway timeout) is stored once.
   */
  async submit(sub: AsyncSubmission): Promise<void> {
    const h = natsHeaders();
    h.set(ASYNC_HEADERS.id, sub.id);
    h.set(ASYNC_HEADERS.request, sub.requestJson);
    h.set(ASYNC_HEADERS.acceptedAt, String(sub.acceptedAt));
    if (sub.callbackUrl) h.set(ASYNC_HEADERS.callback, sub.callbackUrl);
    const status: InvocationStatus = {
      id: sub.id,
      function: sub.fn,
      state: "queued",
      attempts: 0,
      acceptedAt: new Date(sub.acceptedAt).toISOString(),
      ...(sub.callbackUrl ? { callback: { url: sub.callbackUrl, state: "pending", attempts: 0 } } : {}),
    };
    await Promise.all([
      // create, not put: a worker fast enough to have written "running" already must not be overwritten.
      this.#publisher
        .publish(statusSubject(sub.id), JSON.stringify(status), { expectLastSubjectSequence: 0 })
        .catch((err: unknown) => {
          if (!(err instanceof JetStreamPublishError && err.errCode === WRONG_LAST_SEQUENCE)) throw err;
        }),
      this.#publisher.publish(ASYNC_SUBJECTS.invoke(sub.fn), sub.body, { msgID: sub.id, headers: h }),
    ]);
  }

  async status(id: string): Promise<InvocationStatus | null> {
    if (!isStatusKey(id)) return null;
    const entry = await this.#statuses.get(id);
    if (entry?.operation !== "PUT") return null;
    return entry.json<InvocationStatus>();
  }

  /** The status with its KV revision (0 when there is none), for {@link writeStatusIf}. */
  async readStatus(id: string): Promise<{ status: InvocationStatus | null; revision: number }> {
    if (!isStatusKey(id)) return { status: null, revision: 0 };
    // A direct get through the multiplexer: every run reads its status once (kv.get costs more).
    const last = await this.#publisher.lastOf(`KV_${ASYNC_BUCKETS.invocations}`, statusSubject(id));
    if (!last) return { status: null, revision: 0 };
    const deleted = last.headers?.get("KV-Operation"); // DEL or PURGE markers
    return deleted
      ? { status: null, revision: last.seq }
      : { status: JSON.parse(new TextDecoder().decode(last.data)) as InvocationStatus, revision: last.seq };
  }

  /** Writes `next` if the status is still at `revision`; false when it changed meanwhile. */
  async writeStatusIf(next: InvocationStatus, revision: number): Promise<boolean> {
    try {
      await this.#publisher.publish(statusSubject(next.id), JSON.stringify(next), {
        expectLastSubjectSequence: revision,
      });
      return true;
    } catch (err) {
      if (err instanceof JetStreamPublishError && err.errCode === WRONG_LAST_SEQUENCE) return false;
      throw err;
    }
  }

  /** Writes a status whatever is there (the gateway's replay reset; a success, which is final). */
  async putStatus(status: InvocationStatus): Promise<void> {
    await this.#publisher.publish(statusSubject(status.id), JSON.stringify(status));
  }

  /**
   * Writes `next` unless the invocation has finished meanwhile, and resolves with that finished status
   * instead (null once written). Two deliveries of one message can be live at once (a redelivery after
   * an executor death races the first run, and nats-server 2.9 can hand one message to two pulls,
   * nats-server#5305): without this, a run that failed late overwrote the other's "succeeded" with
   * "queued", and the invocation showed queued forever. Compare-and-set on the key's revision.
   */
  async advanceStatus(next: InvocationStatus): Promise<InvocationStatus | null> {
    for (let round = 0; round < 5; round++) {
      const { status, revision } = await this.readStatus(next.id);
      if (status && (status.state === "succeeded" || status.state === "failed")) return status;
      if (await this.writeStatusIf(next, revision)) return null;
    }
    throw new HearthError("ERR_UNAVAILABLE", `The status of ${next.id} keeps changing; retry`);
  }

  /** Stops the publisher's multiplexer (pending writes fail). */
  close(): void {
    this.#publisher.close();
  }

  /** The response as stored: small bodies inline (base64), larger ones in the results object store. */
  async storeResponse(id: string, head: ResponseHead, body: Uint8Array): Promise<StoredResponse> {
    if (body.byteLength <= INLINE_RESULT_BYTES) {
      return { ...head, bodyBytes: body.byteLength, body: Buffer.from(body).toString("base64") };
    }
    await this.#results.putBlob({ name: id }, body);
    return { ...head, bodyBytes: body.byteLength, bodyObject: id };
  }

  /** The body of a stored response, wherever it lives; null once the object has expired. */
  async responseBody(response: StoredResponse): Promise<Uint8Array | null> {
    if (response.body !== undefined) return Buffer.from(response.body, "base64");
    if (response.bodyObject !== undefined) return this.#results.getBlob(response.bodyObject);
    return new Uint8Array(0);
  }

  /**
   * Claims `key` for function `fn` with a fresh invocation, or reports the claim already there.
   * Keys are hashed (any header value becomes a valid KV key). A claim stuck in "accepting" past
   * ABANDONED_CLAIM_MS is taken over, so a gateway that died mid-accept does not block a key for 24 h.
   */
  async claim(fn: string, key: string, fingerprint: string, id: string, now = Date.now()): Promise<ClaimResult> {
    const claimKey = claimKeyOf(fn, key);
    const mine: IdempotencyClaim = { id, fingerprint, state: "accepting", at: now };
    for (let round = 0; round < 3; round++) {
      try {
        return { kind: "claimed", revision: await this.#claims.create(claimKey, JSON.stringify(mine)) };
      } catch (err) {
        if (!isKeyConflict(err)) throw err;
      }
      const entry = await this.#claims.get(claimKey);
      if (entry?.operation !== "PUT") continue; // expired or deleted meanwhile: create again
      const claim = entry.json<IdempotencyClaim>();
      if (claim.state === "accepting" && now - claim.at > ABANDONED_CLAIM_MS) {
        try {
          return {
            kind: "claimed",
            revision: await this.#claims.update(claimKey, JSON.stringify(mine), entry.revision),
          };
        } catch {
          continue; // someone else took it over first
        }
      }
      return { kind: "existing", claim, revision: entry.revision };
    }
    throw new HearthError("ERR_UNAVAILABLE", "Could not claim the Idempotency-Key; retry");
  }

  /** The invocation is stored: later retries with the key get its id. */
  async confirmClaim(fn: string, key: string, claim: IdempotencyClaim, revision: number): Promise<void> {
    await this.#claims.update(claimKeyOf(fn, key), JSON.stringify({ ...claim, state: "accepted" }), revision);
  }

  /** Accepting failed: free the key so a retry may try again. */
  async releaseClaim(fn: string, key: string, revision: number): Promise<void> {
    await this.#claims.delete(claimKeyOf(fn, key), { previousSeq: revision }).catch(() => {});
  }
}

/** sha256 over the parts that make two submissions "the same request" (IETF draft: fingerprint the payload). */
export function fingerprintOf(...parts: ReadonlyArray<string | Uint8Array>): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(String(typeof part === "string" ? part.length : part.byteLength));
    hash.update(":");
    hash.update(part);
  }
  return hash.digest("hex");
}

/** Where a KV put of an invocation's status goes (ids are nuids: valid keys as they are). */
function statusSubject(id: string): string {
  return `$KV.${ASYNC_BUCKETS.invocations}.${id}`;
}

function claimKeyOf(fn: string, key: string): string {
  return `${fn}.${createHash("sha256").update(key).digest("hex")}`;
}

/** Ids are NATS nuids (22 alphanumerics); anything else cannot be a key we wrote. */
function isStatusKey(id: string): boolean {
  return /^[A-Za-z0-9]{1,64}$/.test(id);
}
