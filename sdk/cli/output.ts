import yoctoSpinner from "yocto-spinner";
import { HearthApiError } from "../client.ts";
import { resolveClientConfig } from "../config.ts";
import { stderrColors, stdoutColors } from "../terminal-colors.ts";

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A usage mistake: printed with a pointer to the command's help, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Work in progress on stderr: a spinner on a terminal, nothing otherwise (logs and pipes stay clean). */
export interface Progress {
  update(text: string): void;
  /** Stops the spinner; the outcome is printed by the caller on stdout. */
  stop(): void;
}

/** The CLI's only door to stdout/stderr; commands print through it so --json stays consistent. */
export interface Output {
  readonly json: boolean;
  /** Human line on stdout (suppressed in --json mode); a leading ✔ ✘ ⚠ is coloured on a terminal. */
  info(line: string): void;
  /** The command's machine-readable result on stdout (only in --json mode). */
  result(value: unknown): void;
  /** Raw bytes to stdout: a function's response body. */
  raw(bytes: Uint8Array): void;
  /** A failure on stderr: what happened, the details, and how to fix it. */
  error(err: unknown): void;
  progress(text: string): Progress;
}

const MARKS: ReadonlyArray<[string, (s: string) => string]> = [
  ["✔", stdoutColors.green],
  ["✘", stdoutColors.red],
  ["⚠", stdoutColors.yellow],
  ["↻", stdoutColors.cyan],
];

/** Colours a line's leading mark, on a terminal only (terminal-colors.ts). */
function paint(line: string): string {
  for (const [mark, colour] of MARKS) if (line.startsWith(mark)) return colour(mark) + line.slice(mark.length);
  return line;
}

const NO_PROGRESS: Progress = { update() {}, stop() {} };

export function createOutput(json: boolean): Output {
  return {
    json,
    info: (line) => {
      if (!json) process.stdout.write(`${paint(line)}\n`);
    },
    result: (value) => {
      if (json) process.stdout.write(`${JSON.stringify(value)}\n`); // one line: easy to pick out of a log stream
    },
    raw: (bytes) => {
      process.stdout.write(bytes);
    },
    error: (err) => {
      if (json) {
        const e = err as { code?: string; message?: string; status?: number; errorId?: string };
        process.stderr.write(
          `${JSON.stringify({ error: { code: e.code ?? "ERR_CLI", message: e.message ?? String(err), status: e.status, errorId: e.errorId } })}\n`,
        );
        return;
      }
      const [first, ...rest] = describeError(err).split("\n");
      process.stderr.write(`${stderrColors.red(`✘ ${first}`)}${rest.map((l) => `\n${l}`).join("")}\n`);
    },
    progress: (text) => {
      if (json || !process.stderr.isTTY || process.env.CI) return NO_PROGRESS;
      const spinner = yoctoSpinner({ text, stream: process.stderr }).start();
      return {
        update: (next) => {
          spinner.text = next;
        },
        stop: () => {
          spinner.clear();
          spinner.stop();
        },
      };
    },
  };
}

/** A size for people: KB below a megabyte (bundles are), else MB, one decimal. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** What happened, the details, and how to fix it. */
function describeError(err: unknown): string {
  if (err instanceof HearthApiError) {
    const hint =
      err.code === "ERR_UNAUTHORIZED"
        ? "\nSet HEARTH_TOKEN, or run `hearth dev` on this machine, which saves the token where the CLI finds it."
        : "";
    return `${err.message} [${err.code}, HTTP ${err.status}${err.errorId ? `, error id ${err.errorId}` : ""}]${hint}`;
  }
  const e = err as { code?: string; message?: string };
  if (e?.code === "ECONNREFUSED" || (e?.message ?? "").includes("ECONNREFUSED")) {
    const { url } = resolveClientConfig();
    return `Could not reach the Hearth gateway at ${url}.\nIs it running? Start a local cluster with \`npm start\` (or \`hearth dev\`), or point the CLI at yours with HEARTH_URL or --url.`;
  }
  return e?.message ?? String(err);
}
