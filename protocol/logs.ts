import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";

/**
 * Function logs: every console line and every error of a function, one JSON entry per message on
 * `hearth.logs.<fn>`, kept by the stream HEARTH_LOGS (the last LOG_RETENTION.linesPerFunction per
 * function). Executors publish them with core NATS (fire and forget); the gateway reads them
 * (`GET /v1/functions/<fn>/logs`, `hearth logs`).
 */
export const LOG_SUBJECTS = {
  /** The entries of one function. */
  fn: (fn: string) => `hearth.logs.${fn}`,
  /** Every function's entries: what the stream captures and what executors may publish to. */
  all: "hearth.logs.>",
} as const;

export const LOG_STREAM = "HEARTH_LOGS";

/**
 * What the stream keeps. 1,000 entries of at most 1 KiB each bound a function's history to 1 MiB
 * (a chatty function cannot push another's lines out: the cap is per subject). The stream's own
 * bound (1 GiB, a thousand full functions) and age (7 days, Workers Logs' free retention is 3 d,
 * Vercel's runtime logs 1 d to 30 d) cap the whole.
 */
export const LOG_RETENTION = Object.freeze({
  linesPerFunction: 1_000,
  entryBytes: 1_024,
  maxAgeMs: 7 * 24 * 60 * 60 * 1000,
  streamBytes: 1024 * 1024 * 1024,
});

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogKind = "console" | "error" | "dropped";

/** One log entry, as stored and as the logs API streams it (one JSON object per line). */
export interface LogEntry {
  /** ISO 8601, when the executor received the line. */
  readonly time: string;
  readonly fn: string;
  /** The runtime version hash (FunctionRecord.version) that wrote it. */
  readonly version: string;
  /** The version's number (1, 2, ...), when the executor knew it. */
  readonly versionId?: number;
  /** Null for a line written outside any invocation (top level, an unattributed continuation). */
  readonly invocationId: string | null;
  readonly level: LogLevel;
  readonly message: string;
  /** A console line, an error of the function (throw, timeout, a limit, a bad response), or a drop marker. */
  readonly kind: LogKind;
}

const LEVELS: ReadonlySet<string> = new Set(["debug", "info", "warn", "error"]);
const KINDS: ReadonlySet<string> = new Set(["console", "error", "dropped"]);
const encoder = new TextEncoder();

/**
 * The entry as it is published: JSON of at most LOG_RETENTION.entryBytes. A longer message is cut
 * to fit, on a character boundary, and ends with `…[truncated N bytes]` (N: UTF-8 bytes cut).
 */
export function encodeLogEntry(entry: LogEntry, maxBytes: number = LOG_RETENTION.entryBytes): Uint8Array {
  const whole = encoder.encode(JSON.stringify(entry));
  if (whole.byteLength <= maxBytes) return whole;
  const messageBytes = encoder.encode(entry.message).byteLength;
  // JSON escapes make the encoded message longer than its UTF-8 bytes: shrink until it fits.
  let keep = Math.max(0, messageBytes - (whole.byteLength - maxBytes) - 40);
  for (;;) {
    const kept = utf8Prefix(entry.message, keep);
    const cut = messageBytes - encoder.encode(kept).byteLength;
    const out = encoder.encode(JSON.stringify({ ...entry, message: `${kept}…[truncated ${cut} bytes]` }));
    if (out.byteLength <= maxBytes || keep === 0) return out;
    keep = Math.max(0, keep - (out.byteLength - maxBytes));
  }
}

/** The longest prefix of `text` whose UTF-8 encoding is at most `bytes` (encodeInto never splits a character). */
function utf8Prefix(text: string, bytes: number): string {
  const { read } = encoder.encodeInto(text, new Uint8Array(bytes));
  return text.slice(0, read);
}

/** Reads a stored entry; null for anything that is not one (the subject is writable by every executor). */
export function decodeLogEntry(data: Uint8Array): LogEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const e = value as Record<string, unknown>;
  const ok =
    typeof e.time === "string" &&
    typeof e.fn === "string" &&
    typeof e.version === "string" &&
    (e.versionId === undefined || typeof e.versionId === "number") &&
    (e.invocationId === null || typeof e.invocationId === "string") &&
    typeof e.level === "string" &&
    LEVELS.has(e.level) &&
    typeof e.message === "string" &&
    typeof e.kind === "string" &&
    KINDS.has(e.kind);
  return ok ? (e as unknown as LogEntry) : null;
}

/**
 * HEARTH_LOGS: Limits retention, the oldest entries of a function go first. A function, not a
 * constant: evaluating NATS' enums at import time would make every importer of LOG_STREAM (the CLI's
 * backup reader among them) load the NATS client.
 */
export function logStreamConfig(): Partial<StreamConfig> & { name: string; subjects: string[] } {
  return {
    name: LOG_STREAM,
    subjects: [LOG_SUBJECTS.all],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_msgs_per_subject: LOG_RETENTION.linesPerFunction,
    max_msg_size: LOG_RETENTION.entryBytes,
    max_bytes: LOG_RETENTION.streamBytes,
    max_age: nanos(LOG_RETENTION.maxAgeMs),
  };
}

/**
 * Creates HEARTH_LOGS if it is missing; idempotent, called by the control plane at start (`hearth
 * dev` and every gateway). Executors cannot create streams: lines they publish before it exists are
 * not kept.
 */
export async function ensureLogStream(jsm: JetStreamManager): Promise<void> {
  try {
    await jsm.streams.info(LOG_STREAM);
  } catch {
    try {
      await jsm.streams.add(logStreamConfig());
    } catch (err) {
      // Another process created it between our info and add.
      if (!/already in use/i.test(String((err as Error).message))) throw err;
    }
  }
}
