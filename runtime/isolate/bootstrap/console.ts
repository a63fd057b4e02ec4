import type { HostBridge } from "./host.ts";

const LEVELS = ["debug", "info", "log", "warn", "error", "trace"] as const;

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

/** Renders console arguments roughly as browsers do: strings as-is, errors with stack, else JSON. */
export function formatArgs(args: unknown[]): string {
  return args.map(formatValue).join(" ");
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  if (typeof value === "function") return `[Function ${value.name || "anonymous"}]`;
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value !== "object" || value === null) return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

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
 */
export function createConsole(buffer: ConsoleBuffer, currentInvocation: () => string | null): Console {
  const sink: Record<string, (...args: unknown[]) => void> = {};
  for (const level of LEVELS) {
    sink[level] = (...args: unknown[]) => buffer.write(level, formatArgs(args), currentInvocation());
  }
  return sink as unknown as Console;
}
