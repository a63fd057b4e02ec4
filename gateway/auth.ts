import { createHash, timingSafeEqual } from "node:crypto";
import { BOOTSTRAP_PRINCIPAL, type Principal, principalOf } from "../control/index.ts";
import { type HeaderPairs, HearthError, hashToken, type TokenStore } from "../protocol/index.ts";

const BEARER = /^Bearer\s+(.+)$/i;

/**
 * Turns `Authorization: Bearer <token>` into a Principal without a NATS round trip: the operator's
 * bootstrap token (HEARTH_TOKEN, admin) or a token of the tokens bucket, which this gateway mirrors
 * in memory (SHA-256 → principal) through a watch, so a revoke reaches it within one watch delivery.
 * Takes only the headers, so the node server can run it before it reads a byte of the body.
 */
export class TokenResolver {
  /** SHA-256 of the bootstrap token, compared in constant time. */
  readonly #bootstrap: Buffer;
  readonly #byHash = new Map<string, Principal>();
  /** Token id → its hash: a delete in the bucket names the id only. */
  readonly #hashOfId = new Map<string, string>();
  #watch: { stop(): void } | null = null;

  constructor(bootstrapToken: string) {
    this.#bootstrap = createHash("sha256").update(bootstrapToken).digest();
  }

  /**
   * Loads every token, then follows the bucket. The list comes first so that a gateway serves no
   * request before it knows the tokens; the watch then replays the same state (and any change since)
   * and keeps it current.
   */
  async follow(store: TokenStore, onError: (err: unknown) => void): Promise<void> {
    for (const record of await store.list())
      this.#set(record.id, record.sha256, principalOf(record.name, record.id, record.scopes));
    this.#watch = await store.watch((change) => {
      if (change.kind === "put") {
        const { id, sha256, name, scopes } = change.record;
        this.#set(id, sha256, principalOf(name, id, scopes));
      } else this.#remove(change.key);
    }, onError);
  }

  /** The principal a request acts as; ERR_UNAUTHORIZED when its token is missing, unknown or revoked. */
  principalOf(req: { readonly headers: HeaderPairs }): Principal {
    let header: string | undefined;
    for (const [name, value] of req.headers) {
      if (name === "authorization") {
        header = value;
        break;
      }
    }
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (!token) {
      throw new HearthError(
        "ERR_UNAUTHORIZED",
        "Missing `Authorization: Bearer <token>` header (see HEARTH_TOKEN, and docs/tokens.md)",
      );
    }
    const hash = hashToken(token);
    // A map lookup by SHA-256 needs no constant-time compare: the lookup's timing depends on the hash
    // of what the caller sent, and learning bytes of SHA-256(guess) tells nothing about a stored
    // token's hash that could steer the next guess (a preimage of 256 random bits is out of reach).
    const principal = this.#byHash.get(hash);
    if (principal) return principal;
    // The bootstrap token is compared as before, in constant time over the digests.
    if (timingSafeEqual(Buffer.from(hash, "hex"), this.#bootstrap)) return BOOTSTRAP_PRINCIPAL;
    throw new HearthError("ERR_UNAUTHORIZED", "The token is not valid (unknown, or revoked)");
  }

  /** How many tokens this gateway holds (besides the bootstrap one). */
  get size(): number {
    return this.#byHash.size;
  }

  stop(): void {
    this.#watch?.stop();
    this.#watch = null;
  }

  #set(id: string, sha256: string, principal: Principal): void {
    this.#remove(id);
    this.#byHash.set(sha256, principal);
    this.#hashOfId.set(id, sha256);
  }

  #remove(id: string): void {
    const hash = this.#hashOfId.get(id);
    if (hash === undefined) return;
    this.#byHash.delete(hash);
    this.#hashOfId.delete(id);
  }
}
