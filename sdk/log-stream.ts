import { type Dispatcher, request } from "undici";
import type { LogEntry } from "../protocol/index.ts";

/** `hearth logs` options: see docs/logs.md for each filter. */
export interface LogsOptions {
  /** Keep the stream open and yield new entries as they are written. */
  readonly follow?: boolean;
  /** At most this many retained entries first (0–1000; default all, or 100 with follow). */
  readonly tail?: number;
  /** "error": errors only; "ok": console lines only. */
  readonly status?: "error" | "ok";
  /** Only entries whose message contains this text. */
  readonly search?: string;
  /** A version number (3, v3) or version hash (6+ characters). */
  readonly version?: string;
  /** This severity and above. */
  readonly level?: "debug" | "info" | "warn" | "error";
  /** Milliseconds between the server's heartbeat lines while following (default 5,000). */
  readonly heartbeatMs?: number;
  /** Called for each heartbeat line: a followed stream is alive though the function is quiet. */
  readonly onHeartbeat?: () => void;
  /** Ends the stream (the request is aborted, the server's consumer goes with it). */
  readonly signal?: AbortSignal;
}

/** The query string of a logs request. */
export function logsQuery(options: LogsOptions): string {
  const query = new URLSearchParams();
  if (options.follow) query.set("follow", "1");
  if (options.tail !== undefined) query.set("tail", String(options.tail));
  if (options.status) query.set("status", options.status);
  if (options.search) query.set("search", options.search);
  if (options.version) query.set("version", options.version);
  if (options.level) query.set("level", options.level);
  if (options.heartbeatMs !== undefined) query.set("heartbeat", String(options.heartbeatMs));
  const text = query.toString();
  return text ? `?${text}` : "";
}

/**
 * Reads an NDJSON log body line by line as it arrives. `answer` turns a non-200 into the error the
 * client throws for it. An aborted signal ends the iteration quietly.
 */
export async function* readLogStream(
  url: string,
  headers: Record<string, string>,
  options: LogsOptions,
  dispatcher: Dispatcher | undefined,
  answer: (status: number, text: string) => void,
): AsyncGenerator<LogEntry> {
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { method: "GET", headers, dispatcher, signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) return;
    throw err;
  }
  if (res.statusCode !== 200) {
    answer(res.statusCode, await res.body.text());
    return;
  }
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf("\n");
        if (!line) continue;
        const value = JSON.parse(line) as LogEntry | { type: "heartbeat" };
        if ("type" in value) options.onHeartbeat?.();
        else yield value;
      }
    }
  } catch (err) {
    if (options.signal?.aborted) return;
    throw err;
  } finally {
    res.body.destroy();
  }
}
