import { host } from "../host.ts";
import { errorFromHost } from "./errors.ts";
import { CRYPTO_LIMITS } from "./limits.ts";
import type { WireRequest, WireResult, WireValue } from "./wire.ts";

interface Job {
  readonly request: WireRequest;
  resolve(value: WireValue): void;
  reject(err: Error): void;
}

const running = new Map<number, Job>();
const waiting: Job[] = [];
let nextId = 1;

/**
 * Runs `request` on the host's native Web Crypto and resolves with its copied result. At most
 * CRYPTO_LIMITS.maxInFlight run at once per isolate; the rest wait here, in order, so a function that
 * verifies 50 signatures with Promise.all gets them all, just not all at once.
 */
export function onHost(request: WireRequest): Promise<WireValue> {
  return new Promise((resolve, reject) => {
    waiting.push({ request, resolve, reject });
    pump();
  });
}

function pump(): void {
  while (running.size < CRYPTO_LIMITS.maxInFlight) {
    const job = waiting.shift();
    if (!job) return;
    const id = nextId++;
    running.set(id, job);
    try {
      host.cryptoStart(id, job.request);
    } catch (err) {
      // The request could not be copied out (or the bridge is gone): fail this job, keep the queue going.
      running.delete(id);
      job.reject(err instanceof Error ? err : new TypeError(String(err)));
    }
  }
}

/** Called by the host with the outcome of operation `id`. */
export function cryptoDone(id: number, result: WireResult): void {
  const job = running.get(id);
  if (!job) return;
  running.delete(id);
  if ("value" in result) job.resolve(result.value);
  else job.reject(errorFromHost(result.error ?? {}));
  pump();
}
