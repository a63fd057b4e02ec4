/** Lazy part "inspect" (lazy.ts): console's rendering of objects, Node's util.inspect shapes. */
export { default as inspect } from "object-inspect";
