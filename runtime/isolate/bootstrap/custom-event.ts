import { Event } from "event-target-shim";

export interface CustomEventInitLike<T> extends EventInit {
  detail?: T;
}

/** CustomEvent (https://dom.spec.whatwg.org/#interface-customevent), which event-target-shim lacks. */
export class CustomEvent<T = unknown> extends Event {
  #detail: T | null;

  constructor(type: string, init?: CustomEventInitLike<T>) {
    // WebIDL: `type` is required; undefined passed explicitly still converts to "undefined".
    // biome-ignore lint/complexity/noArguments: WebIDL tells a missing argument from undefined, which only `arguments` can.
    if (arguments.length === 0) throw new TypeError("CustomEvent needs a type");
    super(type, init);
    this.#detail = init?.detail ?? null;
  }

  get detail(): T | null {
    return this.#detail;
  }

  /** Legacy initializer; like initEvent it does nothing while the event is being dispatched. */
  initCustomEvent(type: string, bubbles = false, cancelable = false, detail: T | null = null): void {
    // biome-ignore lint/complexity/noArguments: WebIDL tells a missing argument from undefined, which only `arguments` can.
    if (arguments.length === 0) throw new TypeError("initCustomEvent needs a type");
    if (this.eventPhase !== Event.NONE) return;
    this.initEvent(type, bubbles, cancelable);
    this.#detail = detail;
  }

  get [Symbol.toStringTag](): string {
    return "CustomEvent";
  }
}
