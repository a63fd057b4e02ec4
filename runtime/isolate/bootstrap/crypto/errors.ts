/**
 * The DOMException names Web Crypto rejects with (W3C Web Cryptography API §18 "Algorithm
 * normalization" and each algorithm's steps), plus QuotaExceededError for Hearth's own caps.
 * Function code matches on `err.name`, so the names are the contract.
 */
export type CryptoErrorName =
  | "NotSupportedError"
  | "InvalidAccessError"
  | "DataError"
  | "OperationError"
  | "SyntaxError"
  | "QuotaExceededError";

/** The names an error keeps on its way from the host (crypto-host.ts) into the isolate; others become OperationError. */
export const CRYPTO_ERROR_NAMES: ReadonlySet<string> = new Set<CryptoErrorName>([
  "NotSupportedError",
  "InvalidAccessError",
  "DataError",
  "OperationError",
  "SyntaxError",
  "QuotaExceededError",
]);

export function cryptoError(name: CryptoErrorName, message: string): DOMException {
  return new DOMException(message, name);
}

/** Rebuilds an error the host reported (a copy: only its name and message cross). */
export function errorFromHost(error: { name?: unknown; message?: unknown }): Error {
  const message = typeof error.message === "string" ? error.message : "The operation failed";
  if (error.name === "TypeError") return new TypeError(message);
  return new DOMException(
    message,
    CRYPTO_ERROR_NAMES.has(error.name as string) ? (error.name as string) : "OperationError",
  );
}
