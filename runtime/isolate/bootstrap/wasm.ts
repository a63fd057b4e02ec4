/**
 * Counts WebAssembly memory against the function's memory limit. V8 does not count it (research
 * §1: a 256 MB WebAssembly.Memory in a 16 MB isolate was allowed and grew the process RSS by 256 MB),
 * so memories made or grown from JavaScript draw on a budget of the isolate's memory limit and
 * throw RangeError past it, as a failed allocation does. Memories a module declares internally, and
 * `memory.grow` executed inside Wasm code, are not seen here (see docs/architecture.md).
 */
const PAGE_BYTES = 65_536;
let budgetBytes = Number.POSITIVE_INFINITY;
let usedBytes = 0;

interface Account {
  bytes: number;
}

const accounts = new WeakMap<WebAssembly.Memory, Account>();
const released = new FinalizationRegistry<Account>((account) => {
  usedBytes -= account.bytes;
});

function reserve(bytes: number): void {
  if (usedBytes + bytes > budgetBytes) {
    throw new RangeError(
      `WebAssembly.Memory: ${bytes} more bytes would exceed the function's ${budgetBytes} byte memory limit`,
    );
  }
  usedBytes += bytes;
}

/** Installs the accounting; `limitBytes` is the isolate's memory limit. */
export function limitWasmMemory(limitBytes: number): void {
  budgetBytes = limitBytes;
  const Native = WebAssembly.Memory;
  const nativeGrow = Native.prototype.grow;
  function Memory(this: unknown, descriptor: WebAssembly.MemoryDescriptor): WebAssembly.Memory {
    if (!new.target) throw new TypeError("WebAssembly.Memory must be invoked with 'new'");
    const bytes = Math.max(0, Number(descriptor?.initial) || 0) * PAGE_BYTES;
    reserve(bytes);
    let memory: WebAssembly.Memory;
    try {
      memory = new Native(descriptor);
    } catch (err) {
      usedBytes -= bytes;
      throw err;
    }
    const account = { bytes };
    accounts.set(memory, account);
    released.register(memory, account);
    return memory;
  }
  Memory.prototype = Native.prototype;
  // Else `new memory.constructor(...)` would reach the native, unaccounted constructor.
  Object.defineProperty(Native.prototype, "constructor", { value: Memory, writable: true, configurable: true });
  Native.prototype.grow = function grow(this: WebAssembly.Memory, delta: number): number {
    const account = accounts.get(this);
    const bytes = Math.max(0, Number(delta) || 0) * PAGE_BYTES;
    if (account) reserve(bytes);
    try {
      const previous = nativeGrow.call(this, delta);
      if (account) account.bytes += bytes;
      return previous;
    } catch (err) {
      if (account) usedBytes -= bytes;
      throw err;
    }
  };
  Object.defineProperty(WebAssembly, "Memory", {
    value: Memory,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
