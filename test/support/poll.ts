/**
 * Reads `read` every 25 ms until `accept` takes what it returned, and returns that; throws naming
 * `what` after `timeoutMs`. For conditions that come true in their own time (a process starting, a
 * redeploy landing): a test waits for the condition, never for a fixed time.
 */
export async function pollUntil<T>(
  read: () => T | Promise<T>,
  accept: (value: T) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
