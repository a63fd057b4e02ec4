import type { NatsConnection } from "@nats-io/transport-node";
import { HearthError, isErrorCode, SUBJECTS, type WorkerCommand, type WorkerCommandReply } from "../protocol/index.ts";

/** How long one node may take to carry out a command (fetch a bundle, compile, first isolate). */
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/**
 * Act: sends the leader's commands to worker nodes, each stamped with the leader's fencing epoch, so
 * a node refuses commands from a leader that has since been replaced.
 */
export class NodeClient {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;

  constructor(nc: NatsConnection, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS) {
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
  }

  /** Holds `isolates` of `fn` on `executor` (0 unloads); resolves with the executor that holds it. */
  async assign(
    node: string,
    fn: string,
    executor: string | undefined,
    isolates: number,
    epoch: number,
  ): Promise<string> {
    const reply = await this.#send(node, { type: "assign", epoch, fn, isolates, ...(executor ? { executor } : {}) });
    return (reply.ok && reply.executor) || executor || "";
  }

  async drain(node: string, epoch: number): Promise<void> {
    await this.#send(node, { type: "drain", epoch });
  }

  async #send(node: string, command: WorkerCommand): Promise<WorkerCommandReply> {
    let reply: WorkerCommandReply;
    try {
      const msg = await this.#nc.request(SUBJECTS.workerCommand(node), JSON.stringify(command), {
        timeout: this.#timeoutMs,
      });
      reply = msg.json<WorkerCommandReply>();
    } catch (err) {
      throw new HearthError("ERR_NO_CAPACITY", `Node ${node} did not answer: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!reply.ok) throw new HearthError(isErrorCode(reply.code) ? reply.code : "ERR_INTERNAL", reply.message);
    return reply;
  }
}
