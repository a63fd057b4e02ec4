/**
 * What a gateway publishes on SUBJECTS.admissionCounts: how many invocations it admitted, per limited
 * key, in the current window of that key's period. Only keys whose count changed since its last
 * message are listed; with none, the message is empty — sent anyway every sync interval, so the
 * others can tell that this gateway's counts are current (20 small messages a second per gateway).
 */
export interface AdmissionCounts {
  /** The sender's id (its gatewayLoad id too), so a gateway ignores its own messages. */
  readonly gateway: string;
  /** `[key, window, count]`: `window` is ⌊wall-clock ms ÷ period ms⌋, `count` what the sender admitted in it. */
  readonly counts: readonly (readonly [key: string, window: number, count: number])[];
}

/** Most entries one message carries; more are split over several messages (each stays far under max_payload). */
export const ADMISSION_COUNTS_MAX_ENTRIES = 2_000;

const isCount = (value: unknown): value is number =>
  typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 1e15;

/** Reads an admission-counts message; null for anything malformed. */
export function parseAdmissionCounts(data: Uint8Array): AdmissionCounts | null {
  let message: Partial<AdmissionCounts> | null;
  try {
    message = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
  const valid =
    message !== null &&
    typeof message === "object" &&
    typeof message.gateway === "string" &&
    Array.isArray(message.counts) &&
    message.counts.every(
      (entry) =>
        Array.isArray(entry) &&
        entry.length === 3 &&
        typeof entry[0] === "string" &&
        isCount(entry[1]) &&
        isCount(entry[2]),
    );
  return valid ? (message as AdmissionCounts) : null;
}
