/**
 * Counts admissions per key in fixed windows aligned to the wall clock (window = ⌊now ÷ period⌋, as
 * envoyproxy/ratelimit buckets its counters per unit), here and, as last heard, on every other
 * gateway. Pure: time is an argument, nothing here does I/O.
 *
 * Admission rule, per key with limit N:
 * - refuse when this gateway's count plus the others' last heard counts has reached N;
 * - else admit at most ⌈remaining ÷ active gateways⌉ per round (`roundMs`), where remaining and the
 *   number of gateways active on the key (admitted something in this window or the last) are read
 *   at the round's first request. The share is what bounds the overshoot: without it, each other
 *   gateway can admit everything that arrives in the time it takes its counts to be heard
 *   (≈ rate × (sync interval + transit), 50–100 % of N at the limits tested); with it, the
 *   gateways of one round together take at most what remained, plus one each for the rounding.
 *   Traffic on one gateway alone is not held back: an idle gateway is not active.
 * - while another gateway's counts are late (none for three sync intervals; every gateway sends at
 *   least an empty message each interval), admit no more than ⌈N ÷ gateways⌉ in the window.
 *   Envoy's quota service does the same with a server (each instance reports usage and enforces
 *   the share it is assigned); here each gateway works its share out from the same counts.
 */

/** One other gateway's count for a key: its current window and the one before (clock skew). */
interface PeerCount {
  window: number;
  count: number;
  prevWindow: number;
  prevCount: number;
  /** Its count in `roundWindow` as heard when this gateway's last round began (-1: no round yet). */
  roundCount: number;
  roundWindow: number;
}

interface KeyState {
  periodMs: number;
  window: number;
  /** Admitted here in `window`, and in the window before it. */
  local: number;
  prevLocal: number;
  peers: Map<string, PeerCount>;
  /** The round (⌊now ÷ roundMs⌋) whose share is set, `local` when it began, and the share. */
  round: number;
  roundStart: number;
  allowance: number;
  lastUsedMs: number;
}

/**
 * Why a key refused: its window is full (`retryAfterMs`: until its end), or this gateway used its
 * share of the round (`retryAfterMs`: until the next round, whose share is set from fresher counts).
 */
export interface WindowRefusal {
  readonly full: boolean;
  readonly retryAfterMs: number;
}

/**
 * Two sync intervals (50 ms each): a share is set from counts that include what the others admitted
 * in the round before, as long as a message takes less than one interval to arrive. With rounds as
 * long as the interval, three gateways at 3,000 req/s each against 100 per second admitted 162 in
 * the simulation (20 ms transit): the next round's shares were set before the last round was heard.
 */
export const DEFAULT_ROUND_MS = 100;

export class WindowCounts {
  readonly #roundMs: number;
  readonly #keys = new Map<string, KeyState>();
  /** Keys admitted since the last `drainChanges()`. */
  readonly #changed = new Set<string>();

  constructor(options: { roundMs?: number } = {}) {
    this.#roundMs = options.roundMs ?? DEFAULT_ROUND_MS;
  }

  /**
   * Null when one more admission fits under `limit` per `periodMs`; else why not. Counts nothing.
   * `gateways` (this one included) is the share's divisor while no gateway admitted under the key in
   * the window before (a first burst): without it each would take the whole limit.
   */
  check(
    key: string,
    limit: number,
    periodMs: number,
    nowMs: number,
    gateways = 1,
    peersFresh = true,
  ): WindowRefusal | null {
    const state = this.#state(key, periodMs, nowMs);
    const window = state.window;
    let remote = 0;
    let active = 1;
    let before = state.prevLocal;
    for (const peer of state.peers.values()) {
      const count = countIn(peer, window);
      const prev = countIn(peer, window - 1);
      remote += count;
      before += prev;
      if (count > 0 || prev > 0) active++;
    }
    // A first burst: nobody knows yet who else takes part, so count every gateway in.
    if (before === 0) active = Math.max(active, gateways);
    const used = state.local + remote;
    if (used >= limit) return { full: true, retryAfterMs: (window + 1) * periodMs - nowMs };
    const round = Math.floor(nowMs / this.#roundMs);
    // Late counts from another gateway: the remaining capacity is not known, so take no more than an
    // even split of the whole window until they arrive. Stalls (a busy event loop) are what made
    // shares set from stale counts overshoot: 127 admitted against 100 once, end to end.
    if (!peersFresh && state.local >= Math.ceil(limit / Math.max(active, gateways))) {
      return { full: false, retryAfterMs: (round + 1) * this.#roundMs - nowMs };
    }
    if (state.round !== round) {
      state.round = round;
      state.roundStart = state.local;
      // What the others admitted over the last round as heard now is what they are taking while
      // their latest counts are on the way (they publish every sync interval): counted as taken, so a
      // share is not set from counts one interval old. An idle gateway adds nothing.
      let inTransit = 0;
      for (const peer of state.peers.values()) {
        const count = countIn(peer, window);
        if (peer.roundWindow === window) inTransit += Math.max(0, count - peer.roundCount);
        peer.roundCount = count;
        peer.roundWindow = window;
      }
      state.allowance = Math.ceil(Math.max(0, limit - used - inTransit) / active);
    }
    if (state.local - state.roundStart < state.allowance) return null;
    return { full: false, retryAfterMs: (round + 1) * this.#roundMs - nowMs };
  }

  /** Counts one admission under `key` (after `check` said it fits). */
  commit(key: string): void {
    const state = this.#keys.get(key);
    if (!state) return;
    state.local++;
    this.#changed.add(key);
  }

  /** Another gateway's count for `key` in `window`. Counts only grow within a window, so reordered messages do no harm. */
  observe(gateway: string, key: string, window: number, count: number, nowMs: number): void {
    let state = this.#keys.get(key);
    if (!state) {
      state = newState(0, nowMs);
      this.#keys.set(key, state);
    }
    state.lastUsedMs = nowMs;
    const peer = state.peers.get(gateway);
    if (!peer)
      state.peers.set(gateway, { window, count, prevWindow: -1, prevCount: 0, roundCount: 0, roundWindow: -1 });
    else if (window === peer.window) peer.count = Math.max(peer.count, count);
    else if (window > peer.window) {
      peer.prevWindow = peer.window;
      peer.prevCount = peer.count;
      peer.window = window;
      peer.count = count;
    } else if (window === peer.prevWindow) peer.prevCount = Math.max(peer.prevCount, count);
  }

  /** `[key, window, count]` of every key admitted since the last call: what to tell the other gateways. */
  drainChanges(): Array<[string, number, number]> {
    const out: Array<[string, number, number]> = [];
    for (const key of this.#changed) {
      const state = this.#keys.get(key);
      if (state) out.push([key, state.window, state.local]);
    }
    this.#changed.clear();
    return out;
  }

  /** Forgets keys unused for two of their periods (a minute for keys only heard of). */
  sweep(nowMs: number): void {
    for (const [key, state] of this.#keys) {
      if (nowMs - state.lastUsedMs > 2 * Math.max(state.periodMs, 60_000)) this.#keys.delete(key);
    }
  }

  /** Keys held, for tests and the sweep's check. */
  get size(): number {
    return this.#keys.size;
  }

  #state(key: string, periodMs: number, nowMs: number): KeyState {
    const window = Math.floor(nowMs / periodMs);
    let state = this.#keys.get(key);
    if (!state) {
      state = newState(periodMs, nowMs);
      this.#keys.set(key, state);
    }
    state.lastUsedMs = nowMs;
    if (state.periodMs !== periodMs || state.window !== window) {
      // A new window (or a changed period, whose keys differ anyway): nothing admitted here yet.
      state.prevLocal = state.periodMs === periodMs && state.window === window - 1 ? state.local : 0;
      state.periodMs = periodMs;
      state.window = window;
      state.local = 0;
      state.round = -1;
    }
    return state;
  }
}

function newState(periodMs: number, nowMs: number): KeyState {
  return {
    periodMs,
    window: -1,
    local: 0,
    prevLocal: 0,
    peers: new Map(),
    round: -1,
    roundStart: 0,
    allowance: 0,
    lastUsedMs: nowMs,
  };
}

function countIn(peer: PeerCount, window: number): number {
  if (peer.window === window) return peer.count;
  return peer.prevWindow === window ? peer.prevCount : 0;
}
