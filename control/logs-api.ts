import type { JetStreamClient } from "@nats-io/jetstream";
import { unavailableWhileDisconnected } from "../gateway/error-response.ts";
import type { HttpRequest, HttpResponse } from "../gateway/http-types.ts";
import {
  decodeLogEntry,
  type FunctionStore,
  HearthError,
  LOG_STREAM,
  LOG_SUBJECTS,
  type LogEntry,
  type Logger,
  silentLogger,
  validateFunctionName,
} from "../protocol/index.ts";
import { parseLogQuery } from "./log-filter.ts";
import { LogFollow, ndjsonLine } from "./log-follow.ts";

export interface LogsApiDeps {
  readonly js: JetStreamClient;
  readonly store: FunctionStore;
  /** False while the NATS connection is down: the API answers 503 then. */
  readonly natsConnected: () => boolean;
  readonly log?: Logger;
}

const LOGS_PATH = /^\/v1\/functions\/([^/]+)\/logs$/;
/** Bounds a fetch of the counted history: it only waits this long if lines aged out meanwhile. */
const FETCH_EXPIRES_MS = 2_000;
const NDJSON: Array<[string, string]> = [
  ["content-type", "application/x-ndjson"],
  ["cache-control", "no-store"],
];

/**
 * `GET /v1/functions/<fn>/logs[?follow=1&tail=&status=&search=&version=&level=&heartbeat=]`: a
 * function's retained log entries as NDJSON, oldest first; with `follow`, the tail of them, then
 * live entries and heartbeats, streamed until the client goes away. Null for other paths; the caller
 * has checked the token.
 */
export async function handleLogsApi(req: HttpRequest, path: string, deps: LogsApiDeps): Promise<HttpResponse | null> {
  const match = LOGS_PATH.exec(path);
  if (!match) return null;
  if (req.method !== "GET") throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  const fn = validateFunctionName(decodeURIComponent(match[1] ?? ""));
  const q = req.target.indexOf("?");
  const query = parseLogQuery(new URLSearchParams(q < 0 ? "" : req.target.slice(q + 1)));
  const down = unavailableWhileDisconnected(deps);
  if (down) return down;
  if (!(await deps.store.get(fn))) throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${fn} is not deployed`);
  // An ordered consumer: ephemeral, flow-controlled, deleted when we are done (nats-server 2.9 has
  // direct gets only on streams that enable them, and no "last N of a subject" get).
  const consumer = await deps.js.consumers.get(LOG_STREAM, { filter_subjects: LOG_SUBJECTS.fn(fn) });
  let pending: number;
  try {
    pending = (await consumer.info(true)).num_pending;
  } catch (err) {
    await consumer.delete().catch(() => {});
    throw err;
  }
  if (query.follow) {
    const stream = new LogFollow({ ...query, consumer, pending, log: deps.log ?? silentLogger() });
    return { status: 200, headers: NDJSON, body: "", stream };
  }
  try {
    const kept: LogEntry[] = [];
    if (pending > 0 && query.tail > 0) {
      let seen = 0;
      for await (const msg of await consumer.fetch({ max_messages: pending, expires: FETCH_EXPIRES_MS })) {
        seen++;
        const entry = decodeLogEntry(msg.data);
        if (entry && query.match(entry)) {
          kept.push(entry);
          if (kept.length > query.tail) kept.shift();
        }
        if (seen === pending || msg.info.pending === 0) break;
      }
    }
    return { status: 200, headers: NDJSON, body: Buffer.concat(kept.map(ndjsonLine)) };
  } finally {
    await consumer.delete().catch(() => {});
  }
}
