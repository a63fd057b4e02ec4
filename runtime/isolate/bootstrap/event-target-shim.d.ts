// event-target-shim ships types its package.json "exports" do not point to; it implements the DOM's
// Event and EventTarget, so the DOM lib's types describe it.
declare module "event-target-shim" {
  export const Event: typeof globalThis.Event;
  export type Event = globalThis.Event;
  export const EventTarget: typeof globalThis.EventTarget;
  export type EventTarget = globalThis.EventTarget;
  /** Event handler attributes such as `onabort` (https://html.spec.whatwg.org/#event-handler-attributes). */
  export function getEventAttributeValue(target: EventTarget, type: string): EventListener | null;
  export function setEventAttributeValue(target: EventTarget, type: string, callback: EventListener | null): void;
}
