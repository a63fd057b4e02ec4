import type { HostBridge } from "./host.ts";

const LEVELS = ["debug", "info", "log", "warn", "error", "trace"] as const;

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

/**
 * A console whose lines go to the host with the invocation they belong to. Without AsyncContext an
 * isolate cannot know which request an `await`ed continuation serves, so the attribution is the
 * request whose synchronous part is running, else the only one in flight, else none (null).
 */
export function createConsole(bridge: HostBridge, currentInvocation: () => string | null): Console {
  const sink: Record<string, (...args: unknown[]) => void> = {};
  for (const level of LEVELS) {
    sink[level] = (...args: unknown[]) => bridge.log(level, formatArgs(args), currentInvocation());
  }
  return sink as unknown as Console;
}
