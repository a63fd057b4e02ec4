/** Small statistics and report helpers shared by the cluster benchmarks (scaling, routing, placement). */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

const ascending = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);

/** The p-th percentile by nearest rank (p in 0..100); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = ascending(values);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

/** `median (min–max)` of several rounds, with `digits` decimals: the spread the brief asks for. */
export function spread(values: readonly number[], digits = 1): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return "n/a";
  const f = (n: number) => n.toFixed(digits);
  const sorted = ascending(finite);
  const range = sorted.length > 1 ? ` (${f(sorted[0] as number)}–${f(sorted.at(-1) as number)})` : "";
  const missing = finite.length < values.length ? ` [${values.length - finite.length} n/a]` : "";
  return `${f(median(finite))}${range}${missing}`;
}

/** A markdown table from rows of equal keys. */
export function table(rows: ReadonlyArray<Record<string, string | number>>): string {
  const keys = Object.keys(rows[0] ?? {});
  return [
    `| ${keys.join(" | ")} |`,
    `|${keys.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${keys.map((k) => r[k]).join(" | ")} |`),
  ].join("\n");
}

/** "✓" or "✗" for a target. */
export const met = (ok: boolean): string => (ok ? "✓" : "✗");

/** Writes `bench/results/<part>-<timestamp>.{json,md}` (gitignored) and returns the markdown path. */
export function saveResults(part: string, data: unknown, markdown: string): string {
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  writeFileSync(join(dir, `${part}-${stamp}.json`), JSON.stringify(data, null, 2));
  const md = join(dir, `${part}-${stamp}.md`);
  writeFileSync(md, `${markdown}\n`);
  return md;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `read` every `everyMs` until `accept` holds; throws after `timeoutMs` with the last value. */
export async function until<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (performance.now() > deadline) throw new Error(`still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
