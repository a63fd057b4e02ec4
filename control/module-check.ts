import { FunctionStore, HearthError, type Logger, silentLogger } from "../protocol/index.ts";
import {
  type Bootstrap,
  CodeCache,
  CpuWatchdog,
  FunctionIsolate,
  loadBootstrap,
  mapStack,
  OutboundFetch,
  parseSourceMap,
  STARTUP_TIMEOUT_MS,
  scriptNameOf,
  withoutHostFrames,
} from "../runtime/index.ts";

/** What a deploy asks to have evaluated. */
export interface ModuleUnderCheck {
  readonly name: string;
  /** The prepared classic script, as workers will run it. */
  readonly script: string;
  /** The memory limit the function will run under. */
  readonly memoryMb: number;
  /** The script's source map (JSON), read only when the module fails, to map its stack. */
  readonly sourceMap?: string;
}

/** Evaluates a module's top level before it is deployed; throws ERR_MODULE_INIT when it fails. */
export interface ModuleCheck {
  check(module: ModuleUnderCheck): Promise<void>;
}

export interface ModuleCheckerOptions {
  /** The sandbox's memory limit: the function's own, at most this (DEFAULT_CHECK_MEMORY_MB). */
  readonly maxMemoryMb?: number;
  /** Wall-clock bound on one evaluation, however it gets stuck (DEFAULT_CHECK_WALL_MS). */
  readonly wallTimeoutMs?: number;
  /** The runtime's bootstrap, loaded on the first check (its V8 snapshot by default). */
  readonly bootstrap?: () => Promise<Bootstrap>;
  /** V8 hit a fatal OOM in this process, which cannot go on (isolated-vm README, `onCatastrophicError`). */
  readonly onCatastrophicError?: (message: string) => void;
  readonly log?: Logger;
}

/**
 * 128 MB, the default function limit: a deploy check never takes more than a default isolate. A
 * module whose top level needs more than that (and whose own limit is higher) is deployed unverified
 * rather than refused for a limit it does not run under.
 */
export const DEFAULT_CHECK_MEMORY_MB = 128;
/** The top level's own bound is STARTUP_TIMEOUT_MS; this covers a call V8 cannot interrupt. */
export const DEFAULT_CHECK_WALL_MS = 5_000;
const CHECK_BODY_BYTES = 1024;

/** Evaluation refused every outbound connection: a deploy check must not reach anything. */
const NO_EGRESS = { isAllowed: () => false };

/**
 * Runs a module's top level once in a real, throwaway isolate, built by the runtime's own isolate
 * code exactly as a worker's cold start builds it (bootstrap, script, handler binding), so what
 * fails here would fail on every worker. Checks run one at a time: each holds an isolate of up to
 * DEFAULT_CHECK_MEMORY_MB, for the few milliseconds it takes, in the gateway's check process
 * (module-check-process.ts), never in the gateway itself.
 */
export class ModuleChecker implements ModuleCheck {
  readonly #maxMemoryMb: number;
  readonly #wallTimeoutMs: number;
  readonly #loadBootstrap: () => Promise<Bootstrap>;
  readonly #onCatastrophicError: (message: string) => void;
  readonly #log: Logger;
  readonly #watchdog = new CpuWatchdog();
  readonly #outbound = new OutboundFetch({ policy: NO_EGRESS, maxBodyBytes: CHECK_BODY_BYTES });
  #bootstrap: Promise<Bootstrap> | null = null;
  /** The check in progress: the next one starts after it. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: ModuleCheckerOptions = {}) {
    this.#maxMemoryMb = options.maxMemoryMb ?? DEFAULT_CHECK_MEMORY_MB;
    this.#wallTimeoutMs = options.wallTimeoutMs ?? DEFAULT_CHECK_WALL_MS;
    this.#loadBootstrap = options.bootstrap ?? (() => loadBootstrap({ snapshot: true }));
    this.#log = options.log ?? silentLogger();
    this.#onCatastrophicError =
      options.onCatastrophicError ??
      ((message) => {
        // As in executors: V8 is in an unrecoverable state; process.exit() can hang here, abort() does not.
        this.#log.fatal({ message }, "catastrophic isolate error while checking a deploy, aborting");
        process.abort();
      });
  }

  /**
   * Evaluates `module`; resolves when its top level ran and bound a handler.
   *
   * @throws HearthError ERR_MODULE_INIT with the error and its stack mapped through the source map
   */
  check(module: ModuleUnderCheck): Promise<void> {
    const run = this.#tail.then(() => this.#evaluate(module));
    this.#tail = run.catch(() => {});
    return run;
  }

  async #evaluate(module: ModuleUnderCheck): Promise<void> {
    this.#bootstrap ??= this.#loadBootstrap();
    const memoryMb = Math.min(module.memoryMb, this.#maxMemoryMb);
    const creating = FunctionIsolate.create(
      {
        name: module.name,
        digest: FunctionStore.digestOf(new TextEncoder().encode(module.script)),
        version: "deploy-check",
        code: module.script,
        env: {},
        memoryMb,
        timeoutMs: STARTUP_TIMEOUT_MS,
        cpuMs: STARTUP_TIMEOUT_MS,
        concurrency: 1,
        maxBodyBytes: CHECK_BODY_BYTES,
      },
      {
        bootstrap: await this.#bootstrap,
        // A fresh cache each time: compile data is kept per digest, and a checked script is seen once here.
        cache: new CodeCache(1),
        watchdog: this.#watchdog,
        maxBodyBytes: CHECK_BODY_BYTES,
        outbound: this.#outbound,
        onConsole: () => {},
        onCatastrophicError: this.#onCatastrophicError,
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<"stuck">((resolve) => {
      timer = setTimeout(resolve, this.#wallTimeoutMs, "stuck");
    });
    try {
      const outcome = await Promise.race([creating, stuck]);
      if (outcome === "stuck") {
        creating.then((isolate) => isolate.dispose()).catch(() => {});
        throw refusal(module.name, `its evaluation was still running after ${this.#wallTimeoutMs} ms`);
      }
      outcome.dispose();
    } catch (err) {
      if (err instanceof HearthError && err.code === "ERR_MODULE_INIT") throw err;
      const cause = (err as { cause?: unknown }).cause ?? err;
      const message = cause instanceof Error ? cause.message : String(cause);
      if (/memory limit/i.test(message)) {
        if (module.memoryMb > memoryMb) {
          this.#log.warn({ fn: module.name, memoryMb }, "deploy check ran out of its memory: deployed unverified");
          return;
        }
        throw refusal(module.name, `its top level ran out of the function's ${memoryMb} MB of memory`);
      }
      if (/timed out/i.test(message)) {
        throw refusal(module.name, `its top level ran past ${STARTUP_TIMEOUT_MS} ms, the bound of a cold start`);
      }
      if (!thrownByModule(cause, module.name)) {
        // The isolate itself could not be made: Hearth's fault, not the module's.
        throw new HearthError("ERR_INTERNAL", `The deploy check could not run: ${message}`, { cause });
      }
      throw refusal(module.name, `its top level threw:\n${describeThrown(cause, module)}`, cause);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The bootstrap's verdict on a module that exports no handler (bootstrap/dispatch.ts). */
const NO_HANDLER = /^The module has no `export default/;

/**
 * Whether the module, not the runtime, failed: it threw something other than an Error, or an Error
 * raised in its own code (a frame of its script), or the bootstrap found no handler in it.
 */
function thrownByModule(thrown: unknown, fn: string): boolean {
  if (!(thrown instanceof Error)) return true;
  const ownFrame = `(${scriptNameOf(fn)}:`;
  const stack = withoutHostFrames(thrown.stack ?? "");
  return NO_HANDLER.test(thrown.message) || stack.includes(ownFrame) || stack.includes(` at ${ownFrame.slice(1)}`);
}

/** ERR_MODULE_INIT: `fn` was not deployed, and why. */
export function refusal(fn: string, why: string, cause?: unknown): HearthError {
  return new HearthError("ERR_MODULE_INIT", `${fn} was not deployed: ${why}`, cause === undefined ? {} : { cause });
}

/** `Name: message` and the function's own frames, mapped to its sources when a map came with it. */
function describeThrown(thrown: unknown, module: ModuleUnderCheck): string {
  if (!(thrown instanceof Error) || typeof thrown.stack !== "string") return String(thrown);
  const scriptName = scriptNameOf(module.name);
  const own = withoutHostFrames(thrown.stack);
  const stack = module.sourceMap ? mapStack(own, scriptName, parseSourceMap(module.sourceMap)) : own;
  // The bootstrap's frames (binding the handler) say nothing the message does not.
  return stack
    .split("\n")
    .filter((line) => !/^\s+at .*hearth:bootstrap\.js/.test(line))
    .join("\n");
}
