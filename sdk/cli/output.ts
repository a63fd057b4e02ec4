import { HearthApiError } from "../client.ts";
import { resolveClientConfig } from "../config.ts";

/** Exit codes scripts can rely on. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A usage mistake: printed with the command's help, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The CLI's only door to stdout/stderr; commands print through it so --json stays consistent. */
export interface Output {
  readonly json: boolean;
  /** Human line on stdout (suppressed in --json mode). */
  info(line: string): void;
  /** The command's machine-readable result on stdout (only in --json mode). */
  result(value: unknown): void;
  /** Raw bytes to stdout: a function's response body. */
  raw(bytes: Uint8Array): void;
  error(err: unknown): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    info: (line) => {
      if (!json) process.stdout.write(`${line}\n`);
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
      process.stderr.write(`${describeError(err)}\n`);
    },
  };
}

/** What happened, the details, and how to fix it. */
function describeError(err: unknown): string {
  if (err instanceof HearthApiError) {
    const hint =
      err.code === "ERR_UNAUTHORIZED"
        ? "\nSet HEARTH_TOKEN, or run `hearth dev` on this machine, which saves the token where the CLI finds it."
        : "";
    return `✘ ${err.message} [${err.code}, HTTP ${err.status}${err.errorId ? `, error id ${err.errorId}` : ""}]${hint}`;
  }
  const e = err as { code?: string; message?: string };
  if (e?.code === "ECONNREFUSED" || (e?.message ?? "").includes("ECONNREFUSED")) {
    const { url } = resolveClientConfig();
    return `✘ Could not reach the Hearth gateway at ${url}. Is it running? Start a local cluster with \`npm start\` (or \`hearth dev\`), or set HEARTH_URL.`;
  }
  return `✘ ${e?.message ?? String(err)}`;
}
