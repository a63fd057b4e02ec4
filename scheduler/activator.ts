import type { NatsConnection } from "@nats-io/transport-node";
import {
  type ErrorCode,
  HearthError,
  isErrorCode,
  type Logger,
  SingleFlight,
  SUBJECTS,
  silentLogger,
  type WorkerCommand,
  type WorkerCommandReply,
} from "../protocol/index.ts";
import type { NodeRegistry } from "./node-registry.ts";
import { rankNodesFor } from "./placement.ts";

export interface ActivatorOptions {
  readonly nc: NatsConnection;
  readonly registry: NodeRegistry;
  readonly log?: Logger;
  readonly now?: () => number;
  /** How long a cold request may wait for any worker node to appear (scale from zero nodes). */
  readonly waitForNodeMs?: number;
  /** How long one node may take to load a function (fetch bundle, compile, first isolate). */
  readonly loadTimeoutMs?: number;
}

/** Errors that say the function itself is at fault: trying another node would not help. */
const FUNCTION_FAULTS: ReadonlySet<ErrorCode> = new Set(["ERR_FUNCTION_INVALID", "ERR_FUNCTION_NOT_FOUND"]);
const MAX_NODES_TRIED = 3;
/** Isolates one executor's pool may grow to on its own. */
const DEFAULT_ISOLATES = 4;

/** Where a function was placed. */
export interface Placed {
  readonly node: string;
  readonly executor: string;
}

/**
 * The cold path. A gateway that found no warm capacity asks here; the activator places the function
 * on a node and answers once the pool is warm and subscribed, so the gateway's retry is served.
 * Concurrent cold starts of one function collapse into one placement (single flight).
 */
export class Activator {
  readonly #nc: NatsConnection;
  readonly #registry: NodeRegistry;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #waitForNodeMs: number;
  readonly #loadTimeoutMs: number;
  readonly #inFlight = new SingleFlight<string, Placed>();

  constructor(options: ActivatorOptions) {
    this.#nc = options.nc;
    this.#registry = options.registry;
    this.#log = options.log ?? silentLogger();
    this.#now = options.now ?? Date.now;
    this.#waitForNodeMs = options.waitForNodeMs ?? 10_000;
    this.#loadTimeoutMs = options.loadTimeoutMs ?? 30_000;
  }

  /** Resolves with the node and executor that now hold `fn` warm. */
  activate(fn: string): Promise<Placed> {
    return this.#inFlight.run(fn, () => this.#place(fn));
  }

  async #place(fn: string): Promise<Placed> {
    const started = this.#now();
    let nodes = this.#registry.live(started);
    while (nodes.length === 0) {
      const left = this.#waitForNodeMs - (this.#now() - started);
      if (left <= 0) throw new HearthError("ERR_NO_CAPACITY", "No worker node is available");
      await this.#registry.nextBeat(left);
      nodes = this.#registry.live(this.#now());
    }
    let lastError: unknown;
    for (const node of rankNodesFor(fn, nodes).slice(0, MAX_NODES_TRIED)) {
      try {
        const executor = await this.#loadOn(node.id, fn);
        this.#registry.markLoaded(node.id, fn);
        this.#log.info({ fn, node: node.id, executor, ms: this.#now() - started }, "function activated");
        return { node: node.id, executor };
      } catch (err) {
        if (err instanceof HearthError && FUNCTION_FAULTS.has(err.code)) throw err;
        this.#log.warn({ err, fn, node: node.id }, "placement on node failed; trying the next");
        lastError = err;
      }
    }
    throw new HearthError("ERR_NO_CAPACITY", `No worker node could load ${fn}`, { cause: lastError });
  }

  async #loadOn(nodeId: string, fn: string): Promise<string> {
    const command: WorkerCommand = { type: "assign", epoch: 0, fn, isolates: DEFAULT_ISOLATES };
    const reply = await this.#nc.request(SUBJECTS.workerCommand(nodeId), JSON.stringify(command), {
      timeout: this.#loadTimeoutMs,
    });
    const result = reply.json<WorkerCommandReply>();
    if (!result.ok) {
      throw new HearthError(isErrorCode(result.code) ? result.code : "ERR_INTERNAL", result.message ?? "load failed");
    }
    return result.executor ?? "";
  }
}
