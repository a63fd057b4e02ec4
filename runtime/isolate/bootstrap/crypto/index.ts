import { CryptoKey } from "./crypto-key.ts";
import { cryptoDone } from "./host-queue.ts";
import { getRandomValues, randomUUID } from "./random.ts";
import { subtle } from "./subtle.ts";

/** globalThis.crypto: randomness, and SubtleCrypto split between the isolate and the host. */
export const crypto = { getRandomValues, randomUUID, subtle };

export { CryptoKey, cryptoDone };
