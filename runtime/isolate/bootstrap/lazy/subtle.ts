/** Lazy part "subtle" (lazy.ts): crypto.subtle, its algorithms in the isolate and its calls to the host's. */
export { subtle } from "../crypto/subtle.ts";
