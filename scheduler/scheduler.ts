import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  codeOf,
  type Logger,
  parseHeartbeat,
  QUEUE_GROUPS,
  SUBJECTS,
  silentLogger,
  validateFunctionName,
} from "../protocol/index.ts";
import { Activator } from "./activator.ts";
import { NodeRegistry } from "./node-registry.ts";

export interface SchedulerOptions {
  readonly nc: NatsConnection;
  readonly log?: Logger;
  readonly now?: () => number;
  readonly waitForNodeMs?: number;
}

/**
 * The scheduler process: node registry (from heartbeats) and the activator (cold path). Several may
 * run; activations are spread over them by a NATS queue group. Leader election arrives with the
 * autoscaler, which needs a single writer.
 */
export class Scheduler {
  readonly registry = new NodeRegistry();
  readonly #nc: NatsConnection;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #activator: Activator;
  readonly #subscriptions: Subscription[] = [];

  constructor(options: SchedulerOptions) {
    this.#nc = options.nc;
    this.#log = options.log ?? silentLogger();
    this.#now = options.now ?? Date.now;
    this.#activator = new Activator({
      nc: this.#nc,
      registry: this.registry,
      log: this.#log,
      now: this.#now,
      waitForNodeMs: options.waitForNodeMs,
    });
  }

  async start(): Promise<void> {
    this.#subscriptions.push(
      this.#nc.subscribe(SUBJECTS.heartbeat, {
        callback: (err, msg) => {
          const beat = err ? null : parseHeartbeat(msg.data);
          if (beat) this.registry.observe(beat, this.#now());
        },
      }),
      this.#nc.subscribe(SUBJECTS.activate, {
        queue: QUEUE_GROUPS.scheduler,
        callback: (err, msg) => {
          if (!err) void this.#onActivate(msg);
        },
      }),
    );
    await this.#nc.flush();
    // Ask every node to report now instead of waiting out a heartbeat interval.
    this.#nc.publish(SUBJECTS.schedulerHello);
    this.#log.info("scheduler ready");
  }

  async #onActivate(msg: Msg): Promise<void> {
    try {
      const name = validateFunctionName(msg.json<{ name: unknown }>().name);
      const placed = await this.#activator.activate(name);
      msg.respond(JSON.stringify({ ok: true, ...placed }));
    } catch (err) {
      msg.respond(
        JSON.stringify({ ok: false, code: codeOf(err), message: err instanceof Error ? err.message : String(err) }),
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#subscriptions.map((s) => s.drain()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
