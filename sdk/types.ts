/** Types for function authors: `export default { fetch } satisfies FunctionModule`. */

/** The function's variables, from `hearth deploy --env K=V`. */
export type Env = Readonly<Record<string, string>>;

export interface ExecutionContext {
  /** Keeps the isolate working on `promise` after the response is sent. */
  waitUntil(promise: Promise<unknown>): void;
  /** Accepted for Workers compatibility; Hearth has no origin to fall back to. */
  passThroughOnException(): void;
}

/** The shape of a Hearth (and Cloudflare Workers) module's default export. */
export interface FunctionModule<E = Env> {
  fetch(request: Request, env: E, ctx: ExecutionContext): Response | Promise<Response>;
}
