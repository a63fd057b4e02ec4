/**
 * queueMicrotask (https://html.spec.whatwg.org/#microtask-queuing). V8 leaves it to the embedder and
 * isolated-vm does not expose one; core-js's polyfill batches callbacks into one promise job, so they
 * run out of order with promise reactions queued between them. A reaction on an already resolved
 * promise is queued at once, which makes it a microtask in its own right, in FIFO order with the rest.
 */

/** Captured at bootstrap: function code replacing Promise.prototype.then must not change this. */
const then = Promise.prototype.then;
const resolved = Promise.resolve();

/**
 * Reports an exception no caller can catch, as HTML's "report an exception" does, in the words timers
 * use for theirs; the global console at call time is the one routed to the invocation's log.
 */
function reportUncaught(err: unknown): void {
  console.error("Uncaught error in queueMicrotask callback:", err);
}

export function queueMicrotask(callback: VoidFunction): void {
  if (typeof callback !== "function") {
    throw new TypeError("queueMicrotask needs a function");
  }
  then.call(resolved, () => {
    try {
      callback();
    } catch (err) {
      reportUncaught(err);
    }
  });
}
