import { HearthError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** Reads an optional positive integer setting from the environment, naming the variable on error. */
export function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new HearthError("ERR_BAD_REQUEST", `${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Reads a required setting, naming the variable on error. */
export function requireEnv(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new HearthError("ERR_BAD_REQUEST", `${name} is required`);
  return value;
}

/**
 * Runs `stop` once on SIGINT or SIGTERM, then exits 0 (1 if stop failed). Ctrl-C under `hearth dev`
 * delivers SIGINT to every process and then dev's own SIGTERM: a different second signal is ignored so
 * the shutdown stays graceful; the same signal twice (a second Ctrl-C) exits at once. A process
 * started with an IPC channel (by `hearth dev`) also stops when that channel closes, so a supervisor
 * that dies without stopping its children (SIGKILL) leaves none behind.
 *
 * With `deadlineMs`, a stop that takes longer exits 1 anyway: a process whose parent is gone has no
 * one left to SIGKILL it.
 */
export function onShutdownSignal(log: Logger, stop: () => Promise<void>, options: { deadlineMs?: number } = {}): void {
  let first: string | null = null;
  const handler = (signal: string) => {
    if (first === signal) process.exit(1);
    if (first !== null) return;
    first = signal;
    log.info({ signal }, "shutting down");
    if (options.deadlineMs !== undefined) {
      const { deadlineMs } = options;
      setTimeout(() => {
        log.error({ signal, deadlineMs }, "shutdown took too long; exiting");
        process.exit(1);
      }, deadlineMs).unref();
    }
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err, signal }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  if (process.connected) process.on("disconnect", () => handler("parent gone"));
}
