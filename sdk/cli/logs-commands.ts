import { type Command, InvalidArgumentError, Option } from "commander";
import type { LogEntry } from "../../protocol/index.ts";
import type { LogsOptions } from "../log-stream.ts";
import { withoutControlChars } from "../terminal-colors.ts";
import { action, client } from "./args.ts";
import { EXIT, type Output } from "./output.ts";

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
  // The message is the function's own text: nothing in it may drive the terminal.
  return head + withoutControlChars(entry.message).replaceAll("\n", `\n${" ".repeat(head.length)}`);
}

interface LogsFlags {
  follow?: boolean;
  tail?: number;
  status?: "ok" | "error";
  search?: string;
  version?: string;
  level?: NonNullable<LogsOptions["level"]>;
}

function logsOptionsOf(flags: LogsFlags): LogsOptions {
  return {
    follow: flags.follow ?? false,
    ...(flags.tail === undefined ? {} : { tail: flags.tail }),
    ...(flags.status ? { status: flags.status } : {}),
    ...(flags.search ? { search: flags.search } : {}),
    ...(flags.version ? { version: flags.version } : {}),
    ...(flags.level ? { level: flags.level } : {}),
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

export function registerLogsCommand(program: Command): void {
  program
    .command("logs")
    .description("Show a function's console lines and errors (the last 1,000); --follow streams new ones")
    .argument("<fn>", "the function's name")
    .option("-f, --follow", "keep streaming new lines until Ctrl-C")
    .addOption(new Option("-n, --tail <n>", "only the last n lines (0 to 1000)").argParser(tailOf))
    .addOption(new Option("--status <status>", "only invocations that ended so").choices(["ok", "error"]))
    .option("--search <text>", "only lines containing this text")
    .option("--version <n|hash>", "only this version's lines")
    .addOption(new Option("--level <level>", "only this level").choices(["debug", "info", "warn", "error"]))
    .addHelpText("after", "\nExamples:\n  hearth logs hello -f\n  hearth logs hello --status error -n 20")
    .action(action<LogsFlags, [string]>(async ({ opts, out }, fn) => showLogs(fn, logsOptionsOf(opts), out)));
}

function tailOf(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new InvalidArgumentError("expected an integer from 0 to 1000.");
  return n;
}

async function showLogs(fn: string, options: LogsOptions, out: Output): Promise<number> {
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
}
