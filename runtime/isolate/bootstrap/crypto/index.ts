import { lazyPart } from "../lazy.ts";
import { CryptoKey } from "./crypto-key.ts";
import { cryptoDone } from "./host-queue.ts";
import { getRandomValues, randomUUID } from "./random.ts";

const subtlePart = lazyPart<typeof import("../lazy/subtle.ts")>("subtle");

/**
 * globalThis.crypto: randomness, and SubtleCrypto split between the isolate and the host. `subtle`
 * is a getter, as on the web platform's Crypto.prototype, so its code loads on first use (lazy.ts).
 */
export const crypto = {
  getRandomValues,
  randomUUID,
  get subtle() {
    return subtlePart().subtle;
  },
};

export { CryptoKey, cryptoDone };
