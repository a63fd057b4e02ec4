import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { JetStreamManager } from "@nats-io/jetstream";
import { ASYNC_SUBJECTS, STREAMS } from "../../protocol/index.ts";
import { pollUntil } from "./poll.ts";

/** One report a function POSTed to the sink: which message, which phase of its run, when it landed. */
export interface SinkReport {
  readonly key: string;
  readonly phase: string;
  /** The query string of the report, if any (a function may say which isolate or run it was). */
  readonly tag: string;
  readonly atMs: number;
}

/**
 * A local HTTP server functions report to (`POST /<phase>?<tag>` with the message's key as the body,
 * or several keys one per line), so a test sees what ran, and how often, from outside the processes
 * (a fault test counts runs across the executors it kills). Executors reach it only with HEARTH_EGRESS_ALLOW=127.0.0.1 in their environment.
 */
export interface Sink {
  readonly url: string;
  readonly reports: SinkReport[];
  /** Keys reported in `phase`, each once. */
  keys(phase: string): Set<string>;
  /** How many times each key was reported in `phase`. */
  counts(phase: string): Map<string, number>;
  /** The keys reported in `phase`, in arrival order, repeats kept. */
  bodies(phase: string): string[];
  /** Reports in `phase` beyond the first of each key. */
  duplicates(phase: string): number;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const reports: SinkReport[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      const [path = "/", tag = ""] = (req.url ?? "/").split("?");
      const atMs = performance.now();
      // One report per line: a batch reports all its messages in one request.
      const batch = body.split("\n").map((key) => ({ key, phase: path.slice(1), tag, atMs }));
      reports.push(...batch);
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const counts = (phase: string) => {
    const found = new Map<string, number>();
    for (const r of reports) if (r.phase === phase) found.set(r.key, (found.get(r.key) ?? 0) + 1);
    return found;
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reports,
    keys: (phase) => new Set(counts(phase).keys()),
    bodies: (phase) => reports.filter((r) => r.phase === phase).map((r) => r.key),
    counts,
    duplicates: (phase) => [...counts(phase).values()].reduce((sum, n) => sum + n - 1, 0),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls `read` every 25 ms until it returns something other than undefined; throws `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  read: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  return (await pollUntil(read, (value) => value !== undefined, what, timeoutMs)) as T;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** A dead letter as stored in HEARTH_DLQ: its headers (first value of each) and body. */
export interface StoredDeadLetter {
  readonly seq: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly data: string;
}

/** Every dead letter of function `fn`, oldest first. */
export async function deadLettersOf(jsm: JetStreamManager, fn: string): Promise<StoredDeadLetter[]> {
  const subject = ASYNC_SUBJECTS.deadLetter(fn);
  const info = await jsm.streams.info(STREAMS.deadLetters, { subjects_filter: subject });
  const found: StoredDeadLetter[] = [];
  if ((info.state.subjects?.[subject] ?? 0) === 0) return found;
  for (let seq = info.state.first_seq; seq > 0 && seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(STREAMS.deadLetters, { seq }).catch(() => null);
    if (!msg || msg.subject !== subject) continue;
    const headers: Record<string, string> = {};
    for (const [name, values] of msg.header) headers[name] = values[0] ?? "";
    found.push({ seq, headers, data: msg.string() });
  }
  return found;
}

export { isAlive } from "./cli.ts";

/**
 * Keys reported more than once in `phase` by one isolate (the report's tag). An isolate dies with its
 * executor, so a message run twice in one isolate was run again without any process dying: two
 * deliveries at once, or a rerun of a finished one.
 */
export function concurrentRuns(sink: Sink, phase: string): string[] {
  const seen = new Map<string, number>();
  for (const r of sink.reports) {
    if (r.phase !== phase || !r.tag) continue;
    const id = `${r.key} in isolate ${r.tag}`;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id} ×${n}`);
}

/** The ack window of queue tests: short, so a redelivery after a kill comes within the test's time. */
export const TEST_ACK_WAIT_MS = 1_500;

/**
 * Worker settings for tests of async invocations and triggers: a short ack window and retry backoff,
 * and executors allowed to reach a sink on 127.0.0.1.
 */
export const QUICK_QUEUES = {
  ackWaitMs: TEST_ACK_WAIT_MS,
  retry: { baseMs: 50, capMs: 200 },
  executorEnv: { HEARTH_EGRESS_ALLOW: "127.0.0.1" },
} as const;
