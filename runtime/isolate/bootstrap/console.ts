import { formatArgs, inspectValue } from "./console-format.ts";
import type { HostBridge } from "./host.ts";
import { performance } from "./performance.ts";

/**
 * Console output one invocation may produce (Workers Logs keeps 256 KB per invocation). Past either
 * cap, lines are dropped and counted, and one marker line says how many when the invocation ends.
 * Unattributed lines (see createConsole) share one allowance, renewed whenever the isolate is idle.
 */
export const CONSOLE_LIMITS = Object.freeze({
  linesPerInvocation: 1_000,
  charsPerInvocation: 256 * 1024,
  /** Longer lines are cut here, inside the isolate, before anything is copied out. */
  charsPerLine: 16 * 1024,
  /** Lines go to the host in batches: one host call per this many lines (or characters). */
  batchLines: 64,
  batchChars: 64 * 1024,
});

/**
 * The line ConsoleBuffer.end writes when an invocation's output was capped: the host turns it into a
 * "dropped" log entry. A function can print the same text; it then only mislabels its own line.
 */
export const CAP_MARKER = /^\[hearth\] \d+ console line\(s\) \(\d+ characters\) dropped/;

/** One console line as the host receives it: [level, text, invocation id or null]. */
export type ConsoleLine = [string, string, string | null];

interface Usage {
  lines: number;
  chars: number;
  droppedLines: number;
  droppedChars: number;
}

/**
 * Buffers console lines inside the isolate and hands them to the host in batches, within
 * per-invocation caps. A function cannot flood the host: `for (;;) console.log("x")` costs it CPU
 * inside its own isolate (where the CPU limit sees it) and the host at most a few dozen calls,
 * where one host call per line grew an executor to 2.5 GB and starved its event loop.
 */
export class ConsoleBuffer {
  readonly #bridge: HostBridge;
  #batch: ConsoleLine[] = [];
  #batchChars = 0;
  #flushQueued = false;
  readonly #usage = new Map<string | null, Usage>();

  constructor(bridge: HostBridge) {
    this.#bridge = bridge;
  }

  write(level: string, text: string, invocationId: string | null): void {
    const usage = this.#usageOf(invocationId);
    const line = text.length > CONSOLE_LIMITS.charsPerLine ? cut(text) : text;
    if (
      usage.lines >= CONSOLE_LIMITS.linesPerInvocation ||
      usage.chars + line.length > CONSOLE_LIMITS.charsPerInvocation
    ) {
      usage.droppedLines++;
      usage.droppedChars += text.length;
      return;
    }
    usage.lines++;
    usage.chars += line.length;
    this.#push([level, line, invocationId]);
  }

  /** An invocation ended: says how much of its output was dropped, and sends what is buffered. */
  end(invocationId: string | null): void {
    const usage = this.#usage.get(invocationId);
    this.#usage.delete(invocationId);
    if (usage && usage.droppedLines > 0) {
      this.#push([
        "warn",
        `[hearth] ${usage.droppedLines} console line(s) (${usage.droppedChars} characters) dropped: output is capped at ` +
          `${CONSOLE_LIMITS.linesPerInvocation} lines and ${CONSOLE_LIMITS.charsPerInvocation} characters per invocation`,
        invocationId,
      ]);
    }
    this.flush();
  }

  flush(): void {
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#batchChars = 0;
    this.#bridge.log(batch);
  }

  #push(line: ConsoleLine): void {
    this.#batch.push(line);
    this.#batchChars += line[1].length;
    if (this.#batch.length >= CONSOLE_LIMITS.batchLines || this.#batchChars >= CONSOLE_LIMITS.batchChars) {
      this.flush();
    } else if (!this.#flushQueued) {
      // Lines written in an awaited continuation go out when the isolate yields, not at the next batch.
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.flush();
      });
    }
  }

  #usageOf(invocationId: string | null): Usage {
    let usage = this.#usage.get(invocationId);
    if (!usage) {
      usage = { lines: 0, chars: 0, droppedLines: 0, droppedChars: 0 };
      this.#usage.set(invocationId, usage);
    }
    return usage;
  }
}

function cut(text: string): string {
  return `${text.slice(0, CONSOLE_LIMITS.charsPerLine)}… (${text.length} characters)`;
}

/**
 * A console whose lines go to the host with the invocation they belong to. Without AsyncContext an
 * isolate cannot know which request an `await`ed continuation serves, so the attribution is the
 * request whose synchronous part is running, else the only one in flight, else none (null).
 *
 * The whole console of Workers and Node: the levels, `dir`, `table`, `time`/`timeLog`/`timeEnd`,
 * `count`/`countReset`, `assert`, `group`/`groupCollapsed`/`groupEnd` (indenting what follows by two
 * spaces) and `trace` (with the stack). Timers, counters and groups belong to the isolate, as they
 * belong to the process in Node.
 */
export function createConsole(buffer: ConsoleBuffer, currentInvocation: () => string | null): Console {
  let indent = "";
  const write = (level: string, text: string) =>
    buffer.write(level, indent === "" ? text : indent + text.replaceAll("\n", `\n${indent}`), currentInvocation());
  const timers = new Map<string, number>();
  const counts = new Map<string, number>();
  const elapsed = (label: string, method: string): string | null => {
    const start = timers.get(label);
    if (start === undefined) {
      write("warn", `Warning: No such label '${label}' for console.${method}()`);
      return null;
    }
    return `${label}: ${formatMs(performance.now() - start)}`;
  };
  const console: Record<string, (...args: unknown[]) => void> = {
    log: (...args) => write("log", formatArgs(args)),
    info: (...args) => write("info", formatArgs(args)),
    debug: (...args) => write("debug", formatArgs(args)),
    warn: (...args) => write("warn", formatArgs(args)),
    error: (...args) => write("error", formatArgs(args)),
    trace: (...args) => {
      const stack = (new Error().stack ?? "").split("\n").slice(2).join("\n");
      write("trace", `Trace${args.length > 0 ? `: ${formatArgs(args)}` : ""}\n${stack}`);
    },
    dir: (value, options?: unknown) => {
      const depth = (options as { depth?: number } | undefined)?.depth;
      write("log", inspectValue(value, typeof depth === "number" ? depth : undefined));
    },
    dirxml: (...args) => write("log", formatArgs(args)),
    table: (data, columns?: unknown) => write("log", renderTable(data, Array.isArray(columns) ? columns : undefined)),
    time: (label = "default") => {
      const name = String(label);
      if (timers.has(name)) write("warn", `Warning: Label '${name}' already exists for console.time()`);
      else timers.set(name, performance.now());
    },
    timeLog: (label = "default", ...args) => {
      const line = elapsed(String(label), "timeLog");
      if (line !== null) write("log", args.length > 0 ? `${line} ${formatArgs(args)}` : line);
    },
    timeEnd: (label = "default") => {
      const line = elapsed(String(label), "timeEnd");
      timers.delete(String(label));
      if (line !== null) write("log", line);
    },
    count: (label = "default") => {
      const name = String(label);
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      write("log", `${name}: ${n}`);
    },
    countReset: (label = "default") => {
      counts.delete(String(label));
    },
    assert: (condition, ...args) => {
      if (condition) return;
      write("error", args.length > 0 ? `Assertion failed: ${formatArgs(args)}` : "Assertion failed");
    },
    group: (...args) => {
      if (args.length > 0) write("log", formatArgs(args));
      indent += "  ";
    },
    groupCollapsed: (...args) => {
      if (args.length > 0) write("log", formatArgs(args));
      indent += "  ";
    },
    groupEnd: () => {
      indent = indent.slice(2);
    },
    clear: () => {},
  };
  return console as unknown as Console;
}

/** `12.345ms`, or seconds past one, as Node prints console.timeEnd. */
function formatMs(ms: number): string {
  return ms >= 1_000 ? `${(ms / 1_000).toFixed(3)}s` : `${ms.toFixed(3)}ms`;
}

/**
 * `console.table` as Node draws it: an `(index)` column, one column per property (or `Values` for
 * primitives), box-drawing borders. Anything that is not an object is logged as it is.
 */
export function renderTable(data: unknown, only?: readonly unknown[]): string {
  if (typeof data !== "object" || data === null) return formatArgs([data]);
  const rows: [string, unknown][] =
    data instanceof Map ? [...data.entries()].map(([k, v]) => [inspectValue(k, 0), v]) : Object.entries(data);
  const columns: string[] = [];
  let hasValues = false;
  for (const [, row] of rows) {
    if (typeof row === "object" && row !== null) {
      for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
    } else hasValues = true;
  }
  const shown = only ? only.map(String) : columns;
  const header = ["(index)", ...shown, ...(hasValues ? ["Values"] : [])];
  const cell = (value: unknown) => (value === undefined ? "" : inspectValue(value, 0));
  const body = rows.map(([index, row]) => {
    const isObject = typeof row === "object" && row !== null;
    const record = isObject ? (row as Record<string, unknown>) : {};
    return [index, ...shown.map((key) => cell(record[key])), ...(hasValues ? [isObject ? "" : cell(row)] : [])];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)) + 2);
  const line = (l: string, m: string, r: string) => l + widths.map((w) => "─".repeat(w)).join(m) + r;
  const row = (cells: string[]) => `│${cells.map((c, i) => ` ${c.padEnd((widths[i] as number) - 1)}`).join("│")}│`;
  return [line("┌", "┬", "┐"), row(header), line("├", "┼", "┤"), ...body.map(row), line("└", "┴", "┘")].join("\n");
}
