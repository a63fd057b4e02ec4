/**
 * The function's WebAssembly memory budget: one per isolate, equal to its memory limit, which V8
 * itself does not apply to Wasm memory (measured: a 256 MB memory in a 16 MB isolate grew the
 * process by 256 MB; docs/architecture.md). Every memory is paid for before it exists:
 * memories made from JavaScript by their size, growing as JavaScript grows them; memories Wasm code
 * can grow by themselves (defined in a module, or imported into one) by their maximum.
 */
import { RangeErrorOf, register, weakGet, weakSet } from "./wasm-intrinsics.ts";

/** What one memory, or one instance's memories, hold of the budget. */
export interface Account {
  /** Reserved now. */
  bytes: number;
  /** What the memory or memories can reach (their maxima). */
  readonly maxBytes: number;
  /** `bytes` is `maxBytes`: Wasm code may grow the memory, and nothing more is reserved for growth. */
  pinned: boolean;
  /** Live objects that keep the memory: the reservation is returned when the last is collected. */
  holders: number;
}

export const PAGE_BYTES = 65_536;
/** V8's largest 32-bit memory, 4 GiB. */
export const MAX_PAGES = 65_536;

let limitBytes = Number.POSITIVE_INFINITY;
let usedBytes = 0;

const accounts = new WeakMap<object, Account>();
const released = new FinalizationRegistry<Account>((account) => {
  if (--account.holders === 0) usedBytes -= account.bytes;
});

/** "64 MiB", "12.5 MiB", "64 KiB": sizes for error messages. */
export const sizeText = (bytes: number) =>
  bytes < 1_048_576 ? `${bytes / 1024} KiB` : `${((bytes / 104_857.6) | 0) / 10} MiB`;

/** Sets the budget; `bytes` is the isolate's memory limit. */
export function setWasmLimit(bytes: number): void {
  limitBytes = bytes;
}

/** Whole pages not yet reserved. */
export function freePages(): number {
  const free = limitBytes - usedBytes;
  return (free - (free % PAGE_BYTES)) / PAGE_BYTES;
}

/** "function's 64 MiB memory limit (12 MiB free)", for error messages. */
export function limitText(): string {
  return `function's ${sizeText(limitBytes)} memory limit (${sizeText(limitBytes - usedBytes)} free)`;
}

/**
 * Takes `bytes` from the budget, or throws RangeError as a failed allocation does; `what` starts the
 * message, `hint` ends it.
 */
export function reserve(bytes: number, what: string, hint = ""): void {
  if (!(bytes >= 0 && usedBytes + bytes <= limitBytes)) {
    throw new RangeErrorOf(`${what}: ${sizeText(bytes)} more would exceed the ${limitText()}${hint}`);
  }
  usedBytes += bytes;
}

/** Returns a reservation whose memory was never made. */
export function release(bytes: number): void {
  usedBytes -= bytes;
}

/** Keeps `account` while `holder` lives; registers `memory` as paid for by it. */
export function hold(account: Account, holder: object, memory: boolean): void {
  account.holders++;
  register(released, holder, account);
  if (memory) weakSet(accounts, holder, account);
}

/** The account paying for `memory`, if it has one. */
export function accountOf(memory: unknown): Account | undefined {
  return weakGet(accounts, memory);
}

/** Reserves the rest of a memory's maximum, before it is handed to Wasm code that can grow it unseen. */
export function pin(account: Account, what: string): void {
  if (account.pinned) return;
  reserve(account.maxBytes - account.bytes, what);
  account.bytes = account.maxBytes;
  account.pinned = true;
}
