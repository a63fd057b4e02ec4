import { afterEach } from "vitest";
import { prepareBundle } from "../../control/index.ts";
import {
  type Bootstrap,
  CodeCache,
  CpuWatchdog,
  createEgressPolicy,
  type FunctionCode,
  FunctionIsolate,
  type IsolateDeps,
  type IsolateEvents,
  loadBootstrap,
  OutboundFetch,
} from "../../runtime/index.ts";

export interface ConsoleLine {
  level: string;
  message: string;
  invocationId: string | null;
}

const bootstraps = new Map<boolean, Promise<Bootstrap>>();
const watchdog = new CpuWatchdog();

/** The bootstrap from a V8 snapshot (the default, as in executors) or compiled from source. */
export function bootstrapFor(snapshot: boolean): Promise<Bootstrap> {
  let bootstrap = bootstraps.get(snapshot);
  if (!bootstrap) {
    bootstrap = loadBootstrap({
      snapshot,
      onFallback: (err) => {
        throw err;
      },
    });
    bootstraps.set(snapshot, bootstrap);
  }
  return bootstrap;
}

export interface TestFunctionOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  cpuMs?: number;
  memoryMb?: number;
  concurrency?: number;
  snapshot?: boolean;
  /** HEARTH_EGRESS_ALLOW for this isolate's fetch(). */
  egressAllow?: string;
  events?: IsolateEvents;
  postResponseMs?: number;
}

/** Compiles `source` the way a deploy does, into what an executor runs. */
export async function functionCodeFor(source: string, options: TestFunctionOptions = {}): Promise<FunctionCode> {
  return {
    name: "fn",
    digest: `test-${Math.random()}`,
    version: "v1",
    code: await prepareBundle(source, "fn.js"),
    env: options.env ?? {},
    memoryMb: options.memoryMb ?? 64,
    timeoutMs: options.timeoutMs ?? 2_000,
    cpuMs: options.cpuMs ?? 50,
    concurrency: options.concurrency ?? 32,
    maxBodyBytes: 6 * 1024 * 1024,
  };
}

/** Isolate dependencies as an executor builds them; console lines are collected in `lines`. */
export async function isolateDepsFor(
  options: TestFunctionOptions = {},
  lines: ConsoleLine[] = [],
): Promise<IsolateDeps> {
  return {
    bootstrap: await bootstrapFor(options.snapshot ?? true),
    cache: new CodeCache(),
    watchdog,
    maxBodyBytes: 6 * 1024 * 1024,
    outbound: new OutboundFetch({ policy: createEgressPolicy(options.egressAllow), maxBodyBytes: 6 * 1024 * 1024 }),
    onConsole: (batch) => {
      lines.push(...batch);
    },
    onCatastrophicError: (message) => {
      throw new Error(`catastrophic isolate error in a test: ${message}`);
    },
    ...(options.events ? { events: options.events } : {}),
    ...(options.postResponseMs ? { postResponseMs: options.postResponseMs } : {}),
  };
}

/** Compiles `source` the way a deploy does and starts it in a real isolate. */
export async function isolateFor(
  source: string,
  options: TestFunctionOptions = {},
): Promise<{ isolate: FunctionIsolate; console: ConsoleLine[] }> {
  const lines: ConsoleLine[] = [];
  const isolate = await FunctionIsolate.create(
    await functionCodeFor(source, options),
    await isolateDepsFor(options, lines),
  );
  return { isolate, console: lines };
}

/**
 * `start(source, options)` for a test file: each isolate it starts is disposed after the test
 * (vitest's afterEach). `live` lists the ones still running.
 */
export function isolatesPerTest() {
  const live: FunctionIsolate[] = [];
  afterEach(() => {
    for (const isolate of live.splice(0)) isolate.dispose();
  });
  const start = async (source: string, options?: TestFunctionOptions) => {
    const started = await isolateFor(source, options);
    live.push(started.isolate);
    return started;
  };
  return { live, start };
}

/** A request head as the gateway would send it. */
export function requestJson(url = "http://fn.test/", method = "GET", headers: Array<[string, string]> = []): string {
  return JSON.stringify({ method, url, headers });
}

export const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
