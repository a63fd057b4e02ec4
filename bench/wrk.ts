import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly errors: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === "us" ? n / 1000 : unit === "s" ? n * 1000 : n;
}

/** Runs wrk pinned to CPU 0 (the servers get CPU 1) and parses its --latency report. */
export async function runWrk(
  url: string,
  seconds: number,
  options: { connections?: number; script?: string } = {},
): Promise<LoadResult> {
  const args = ["-c", "0", "wrk", "-t1", `-c${options.connections ?? 64}`, `-d${seconds}s`, "--latency"];
  if (options.script) args.push("-s", options.script);
  const { stdout } = await run("taskset", [...args, url], {
    maxBuffer: 1 << 20,
  });
  const latency = (pct: string) => {
    const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)`, "m").exec(stdout);
    return m ? toMs(m[1] as string, m[2] as string) : Number.NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
  const errors = [...stdout.matchAll(/(?:Non-2xx or 3xx responses|Socket errors: .*?timeout) (\d+)/g)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? 0),
    p50Ms: latency("50"),
    p99Ms: latency("99"),
    requests,
    errors,
  };
}
