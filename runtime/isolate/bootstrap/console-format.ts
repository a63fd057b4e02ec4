import { lazyPart } from "./lazy.ts";

/** object-inspect, compiled into the isolate the first time an object is logged (lazy.ts). */
const inspectPart = lazyPart<typeof import("./lazy/inspect.ts")>("inspect");

/** How deep console.log shows nested objects, as Node's util.inspect does by default. */
const DEPTH = 2;

/**
 * Renders console arguments as Node's `util.format` does: a first string may hold `%s %d %i %f %j
 * %o %O %c %%` placeholders; strings print as they are, errors with their stack, everything else
 * inspected (Map, Set, class instances and cycles included; object-inspect, which is written to match
 * util.inspect's shapes closely, since an isolate has no `util`).
 */
export function formatArgs(args: readonly unknown[]): string {
  const first = args[0];
  let rest = args;
  let head = "";
  if (typeof first === "string" && first.includes("%") && args.length > 1) {
    [head, rest] = substitute(first, args.slice(1));
    if (rest.length === 0) return head;
    return `${head} ${rest.map(formatValue).join(" ")}`;
  }
  return rest.map(formatValue).join(" ");
}

/** One value as console.log shows it: strings bare, errors by their stack, the rest inspected. */
export function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  const primitive = formatPrimitive(value);
  if (primitive !== undefined) return primitive;
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  return inspectValue(value, DEPTH);
}

/** `console.dir`'s rendering: inspected even when a string (quoted). `depth` counts as Node's does. */
export function inspectValue(value: unknown, depth = DEPTH): string {
  try {
    // object-inspect's depth counts the top level too (and takes 0 for "default"): Node's + 1.
    return inspectPart().inspect(value, { depth: depth + 1, quoteStyle: "single" });
  } catch {
    return String(value);
  }
}

/** Fills `%` placeholders from `args`; returns the text and the arguments left over. */
function substitute(template: string, args: readonly unknown[]): [string, readonly unknown[]] {
  let next = 0;
  const text = template.replace(/%([sdifjoOc%])/g, (match, kind: string) => {
    if (kind === "%") return "%";
    if (next >= args.length) return match;
    const arg = args[next++];
    switch (kind) {
      case "s":
        return typeof arg === "string" ? arg : typeof arg === "bigint" ? `${arg}n` : formatValue(arg);
      case "d":
      case "i": {
        if (typeof arg === "bigint") return `${arg}n`;
        const n = Number(arg);
        return String(kind === "i" ? Math.trunc(n) : n);
      }
      case "f":
        return String(Number.parseFloat(String(arg)));
      case "j":
        try {
          return JSON.stringify(arg);
        } catch {
          return "[Circular]";
        }
      case "o":
        return inspectValue(arg, 4);
      case "O":
        return inspectValue(arg, DEPTH);
      default: // %c: CSS, meaningless in a log line
        return "";
    }
  });
  return [text, args.slice(next)];
}

/**
 * A number, bigint, boolean, symbol, null or undefined as util.inspect shows it, or undefined for
 * anything else: the common `console.log("took", ms)` needs no inspector.
 */
function formatPrimitive(value: unknown): string | undefined {
  switch (typeof value) {
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "boolean":
    case "symbol":
    case "undefined":
      return String(value);
    default:
      return value === null ? "null" : undefined;
  }
}
