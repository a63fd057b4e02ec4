import type { LogEntry } from "../../protocol/index.ts";
import type { LogsOptions } from "../log-stream.ts";
import { client, parse } from "./args.ts";
import type { Command } from "./commands.ts";
import { EXIT, type Output, UsageError } from "./output.ts";

/** The server's default heartbeat; HEARTH_LOGS_HEARTBEAT_MS asks for another (tests, proxies with short idle timeouts). */
const DEFAULT_HEARTBEAT_MS = 5_000;
/** Heartbeats missed before a warning (15 s by default), and before giving up (30 s). */
const WARN_AFTER_BEATS = 3;
const QUIT_AFTER_BEATS = 6;
const LEVEL_WIDTH = 5;

/** One entry as `hearth logs` prints it: time, version, level, invocation, message (continuation lines indented). */
export function formatLogEntry(entry: LogEntry): string {
  const version = entry.versionId !== undefined ? `v${entry.versionId}` : entry.version.slice(0, 7);
  // Ids are nuids: a per-process prefix, then a sequence; the end tells invocations apart.
  const invocation = entry.invocationId ? entry.invocationId.slice(-8) : "--------";
  const mark = entry.kind === "error" ? "✘ " : entry.kind === "dropped" ? "⚠ " : "";
  const head = `${entry.time} [${version}] ${entry.level.toUpperCase().padEnd(LEVEL_WIDTH)} ${invocation} ${mark}`;
  return head + entry.message.replaceAll("\n", `\n${" ".repeat(head.length)}`);
}

function parseLogsArgs(args: string[]): { fn: string; options: LogsOptions } {
  const { values, positionals } = parse(args, {
    follow: { type: "boolean", short: "f" },
    tail: { type: "string" },
    status: { type: "string" },
    search: { type: "string" },
    version: { type: "string" },
    level: { type: "string" },
  });
  const fn = positionals[0];
  if (!fn) throw new UsageError("missing function name");
  if (values.status !== undefined && values.status !== "ok" && values.status !== "error")
    throw new UsageError(`--status must be ok or error, got ${JSON.stringify(values.status)}`);
  const levels = ["debug", "info", "warn", "error"];
  if (values.level !== undefined && !levels.includes(values.level))
    throw new UsageError(`--level must be one of ${levels.join(", ")}, got ${JSON.stringify(values.level)}`);
  let tail: number | undefined;
  if (values.tail !== undefined) {
    tail = Number(values.tail);
    if (!Number.isInteger(tail) || tail < 0 || tail > 1000)
      throw new UsageError(`--tail must be an integer from 0 to 1000, got ${JSON.stringify(values.tail)}`);
  }
  return {
    fn,
    options: {
      follow: values.follow ?? false,
      ...(tail === undefined ? {} : { tail }),
      ...(values.status ? { status: values.status as "ok" | "error" } : {}),
      ...(values.search ? { search: values.search } : {}),
      ...(values.version ? { version: values.version } : {}),
      ...(values.level ? { level: values.level as NonNullable<LogsOptions["level"]> } : {}),
    },
  };
}

/**
 * Watches a followed stream: warns on stderr when no line or heartbeat came for 3 heartbeat
 * intervals, and aborts it after 6 (the exit code then says the stream died).
 */
function watchStall(heartbeatMs: number, abort: AbortController): { alive(): void; stalled(): boolean; stop(): void } {
  let lastMs = Date.now();
  let warned = false;
  let stalled = false;
  const timer = setInterval(
    () => {
      const silentMs = Date.now() - lastMs;
      if (silentMs >= heartbeatMs * QUIT_AFTER_BEATS) {
        stalled = true;
        process.stderr.write(
          `✘ Nothing from the gateway for ${Math.round(silentMs / 1000)} s; the log stream is dead.\n`,
        );
        abort.abort();
      } else if (silentMs >= heartbeatMs * WARN_AFTER_BEATS && !warned) {
        warned = true;
        process.stderr.write(
          `⚠ No heartbeat from the gateway for ${Math.round(silentMs / 1000)} s; the log stream may be dead.\n`,
        );
      }
    },
    Math.min(1_000, heartbeatMs),
  );
  return {
    alive: () => {
      lastMs = Date.now();
      warned = false;
    },
    stalled: () => stalled,
    stop: () => clearInterval(timer),
  };
}

export const logs: Command = {
  usage:
    "hearth logs <fn> [--follow] [--tail <n>] [--status ok|error] [--search <text>] [--version <n|hash>] [--level <level>] [--json]",
  summary: "Show a function's console lines and errors (the last 1,000); --follow streams new ones",
  async run(args: string[], out: Output): Promise<number> {
    const { fn, options } = parseLogsArgs(args);
    const hearth = client();
    const print = (entry: LogEntry) =>
      process.stdout.write(`${out.json ? JSON.stringify(entry) : formatLogEntry(entry)}\n`);
    if (!options.follow) {
      for await (const entry of hearth.logs(fn, options)) print(entry);
      return EXIT.ok;
    }
    const heartbeatMs = Number(process.env.HEARTH_LOGS_HEARTBEAT_MS) || DEFAULT_HEARTBEAT_MS;
    const abort = new AbortController();
    let interrupted = false;
    const onSigint = () => {
      interrupted = true;
      abort.abort();
    };
    process.once("SIGINT", onSigint);
    const stall = watchStall(heartbeatMs, abort);
    try {
      for await (const entry of hearth.logs(fn, {
        ...options,
        heartbeatMs,
        signal: abort.signal,
        onHeartbeat: stall.alive,
      })) {
        stall.alive();
        print(entry);
      }
    } finally {
      stall.stop();
      process.off("SIGINT", onSigint);
    }
    if (interrupted) return EXIT.ok;
    if (!stall.stalled()) process.stderr.write("✘ The gateway ended the log stream.\n");
    return EXIT.failed;
  },
};
