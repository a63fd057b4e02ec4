/**
 * Worker-side fencing: admits a command's epoch if it is at least the highest seen, and records it,
 * so commands from a deposed leader are refused once its successor has spoken.
 *
 * @example
 * if (!fence.admit(command.epoch)) return reply({ ok: false, code: "ERR_BAD_REQUEST" });
 */
export class EpochFence {
  #highest = 0;

  /** The highest epoch admitted so far (0 before any). */
  get highest(): number {
    return this.#highest;
  }

  admit(epoch: number): boolean {
    if (!Number.isFinite(epoch) || epoch < this.#highest) return false;
    this.#highest = epoch;
    return true;
  }
}
