import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { prettyFactory } from "pino-pretty";
import { HearthError } from "../../protocol/index.ts";
import { wantsColor, withoutControlChars } from "../terminal-colors.ts";

/** How `hearth dev` shows its components' logs: one readable line per record, or their JSON as is. */
export type LogFormat = "pretty" | "json";

const LOG_FORMATS: readonly LogFormat[] = ["pretty", "json"];

/** Shown before the message, so left out of the fields printed after it. */
const SHOWN_IN_PREFIX = ["component", "pid", "hostname", "fn", "version", "versionId", "invocationId"];

/**
 * Checks a log format named by an option or HEARTH_LOG_FORMAT.
 *
 * @example
 * parseLogFormat("pretty", "HEARTH_LOG_FORMAT") // "pretty"
 * parseLogFormat("yaml", "HEARTH_LOG_FORMAT") // throws ERR_BAD_REQUEST naming HEARTH_LOG_FORMAT
 */
export function parseLogFormat(value: unknown, name: string): LogFormat {
  if (LOG_FORMATS.includes(value as LogFormat)) return value as LogFormat;
  throw new HearthError("ERR_BAD_REQUEST", `${name} must be "pretty" or "json", got ${JSON.stringify(value)}`);
}

/**
 * The format `hearth dev` should use: HEARTH_LOG_FORMAT when set, else pretty on a terminal and JSON
 * when the output goes to a file, a pipe or a log collector.
 *
 * @example
 * startLocalCluster({ logFormat: devLogFormat(process.env, process.stdout) })
 */
export function devLogFormat(env: NodeJS.ProcessEnv, stdout: { readonly isTTY?: boolean }): LogFormat {
  if (env.HEARTH_LOG_FORMAT) return parseLogFormat(env.HEARTH_LOG_FORMAT, "HEARTH_LOG_FORMAT");
  return stdout.isTTY ? "pretty" : "json";
}

/**
 * Renders what a component printed, line by line. A pino record becomes
 * `[HH:MM:ss.mmm] LEVEL: <component> <fn> [<version>] <invocation> <message> {<other fields>}` (local
 * time; version and invocation shortened as `hearth logs` does); `role` names the component whose
 * stream it came on, and an executor, whose lines arrive on its worker's stream, shows as
 * `worker-1/executor[<pid>]`. Anything else (a crash trace, a stray print) comes back unchanged.
 * Returns the text to write, newline included.
 */
export function createLineRenderer(options: { readonly colorize: boolean }): (role: string, line: string) => string {
  const pretty = prettyFactory({
    colorize: options.colorize,
    singleLine: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: SHOWN_IN_PREFIX.join(","),
    messageFormat: (record, messageKey, _levelLabel, { colors }) => {
      const where = [
        typeof record.fn === "string" ? record.fn : "",
        versionLabel(record),
        typeof record.invocationId === "string" ? record.invocationId.slice(-8) : "",
      ].filter(Boolean);
      const message = record[messageKey];
      const text = typeof message === "string" || typeof message === "number" ? String(message) : "";
      return [colors.bold(String(record.component)), ...where.map((part) => colors.gray(part)), text].join(" ");
    },
  });
  return (role, line) => {
    const record = parseRecord(line);
    if (!record) return `${line}\n`;
    const shown: Record<string, unknown> = { ...record, component: componentLabel(role, record) };
    // A worker's records carry its id, which the label already says.
    if (shown.workerId === role) delete shown.workerId;
    return pretty(stripControlChars(shown));
  };
}

/** A pino record (a JSON object with a numeric level), or null for any other line. */
function parseRecord(line: string): Record<string, unknown> | null {
  if (!line.startsWith("{")) return null;
  try {
    const value: unknown = JSON.parse(line);
    const isRecord =
      typeof value === "object" && value !== null && typeof (value as { level?: unknown }).level === "number";
    return isRecord ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** `worker-1` for the worker's own records, `worker-1/executor[4711]` for its executors'. */
function componentLabel(role: string, record: Record<string, unknown>): string {
  const { component, pid } = record;
  if (typeof component !== "string" || component === role.replace(/-\d+$/, "")) return role;
  return typeof pid === "number" ? `${role}/${component}[${pid}]` : `${role}/${component}`;
}

/** `v3` when the record has the version's number, else the first 7 characters of its hash. */
function versionLabel(record: Record<string, unknown>): string {
  if (typeof record.versionId === "number") return `[v${record.versionId}]`;
  return typeof record.version === "string" ? `[${record.version.slice(0, 7)}]` : "";
}

function stripControlChars<T>(value: T): T {
  // A function's console lines reach these records (`source: "console"`).
  if (typeof value === "string") return withoutControlChars(value) as T;
  if (Array.isArray(value)) return value.map(stripControlChars) as T;
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, stripControlChars(inner)])) as T;
}

export interface ComponentLogsOptions {
  /** Default: colour when `stdout` is a terminal and NO_COLOR is unset (wantsColor). */
  readonly colorize?: boolean;
  /** Where rendered stdout lines go; default process.stdout. */
  readonly stdout?: Writable;
  /** Where rendered stderr lines go; default process.stderr. */
  readonly stderr?: Writable;
}

/**
 * The pretty view of a cluster's output: each component is spawned with piped stdout and stderr and
 * attached here; every whole line (readline) is rendered and written in one piece, so the lines of
 * five processes never interleave mid-line. What a component wrote to stderr goes to our stderr.
 */
export class ComponentLogs {
  readonly #render: (role: string, line: string) => string;
  readonly #stdout: Writable;
  readonly #stderr: Writable;
  readonly #open = new Set<Promise<unknown>>();

  constructor(options: ComponentLogsOptions = {}) {
    this.#stdout = options.stdout ?? process.stdout;
    this.#stderr = options.stderr ?? process.stderr;
    const colorize = options.colorize ?? wantsColor(process.env, this.#stdout as { isTTY?: boolean });
    this.#render = createLineRenderer({ colorize });
  }

  /** Renders the child's stdout and stderr as coming from `role` until they end. */
  attach(role: string, child: ChildProcess): void {
    if (child.stdout) this.#follow(role, child.stdout, this.#stdout);
    if (child.stderr) this.#follow(role, child.stderr, this.#stderr);
  }

  /**
   * Resolves once every attached stream has ended, so the last lines of a shutdown are printed
   * before `hearth dev` exits; or after `timeoutMs`, since a stray grandchild may hold a pipe open.
   */
  async flushed(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all(this.#open), timeout]);
    clearTimeout(timer);
  }

  #follow(role: string, input: Readable, output: Writable): void {
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on("line", (line) => output.write(this.#render(role, line)));
    const closed = once(lines, "close");
    this.#open.add(closed);
    void closed.then(() => this.#open.delete(closed));
  }
}
