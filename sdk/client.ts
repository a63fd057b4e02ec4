import { type Dispatcher, request } from "undici";
import type { DeadLetterPage, DeadLetterView } from "../control/index.ts";
import type { AsyncAccepted, InvocationView, ResponseView } from "../gateway/index.ts";
import type { AsyncPolicy, ClusterStatusWithRoutes, FunctionInfo } from "../protocol/index.ts";

export type {
  AsyncPolicy,
  ClusterStatusWithRoutes as ClusterStatus,
  DeadLetterPage,
  DeadLetterView,
  FunctionInfo,
  InvocationView,
  ResponseView,
};

export interface DeployOptions {
  /** Bundled single-file ES module source. */
  readonly code: string;
  /** Shown in server-side error messages. */
  readonly filename?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly memoryMb?: number;
  readonly timeoutMs?: number;
  readonly cpuMs?: number;
  readonly concurrency?: number;
  /** Request and response body limit for this function, in bytes (at most the platform's 6 MB). */
  readonly maxBodyBytes?: number;
  /** Isolates kept warm even when idle (default 0: scale to zero after the keep-alive). */
  readonly minInstances?: number;
  /** Most isolates over the cluster (default 100). */
  readonly maxInstances?: number;
  /** Retries (0–10, default 2) and max event age (60–21,600 s, default 6 h) of async invocations. */
  readonly async?: Partial<AsyncPolicy>;
}

export interface InvokeOptions {
  readonly method?: string;
  /** Path and query after the function's mount point, e.g. `/users/7?q=1`. */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
}

export interface AsyncInvokeOptions extends InvokeOptions {
  /** The same key with the same request within 24 h gets the first one's invocation, stored once. */
  readonly idempotencyKey?: string;
  /** An http(s) URL the result is POSTed to when the invocation ends. */
  readonly callbackUrl?: string;
}

/** An accepted async invocation: poll `invocation(id)` (or `statusUrl`) for its outcome. */
export interface AsyncInvocation extends AsyncAccepted {
  /** True when the Idempotency-Key matched an earlier request: this is that request's invocation. */
  readonly replayed: boolean;
}

export interface DeadLetterListOptions {
  /** At most this many (1–1000, default 100). */
  readonly limit?: number;
  /** Only those after this sequence: the `next` of the previous page. */
  readonly after?: number;
}

export interface InvokeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Uint8Array;
  text(): string;
}

/** An error answered by the Hearth API, with its stable code. */
export class HearthApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly errorId: string | undefined;

  constructor(status: number, code: string, message: string, errorId?: string) {
    super(message);
    this.name = "HearthApiError";
    this.status = status;
    this.code = code;
    this.errorId = errorId;
  }
}

export interface HearthClientOptions {
  /** Gateway base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Admin token for the control API. */
  readonly token?: string;
  /** An undici dispatcher (Agent, Pool) to reuse connections or point at a test server. */
  readonly dispatcher?: Dispatcher;
}

/**
 * Typed client of the Hearth control API and invoke routes.
 *
 * @example
 * const hearth = new HearthClient({ url: "http://127.0.0.1:8080", token });
 * await hearth.deploy("hello", { code });
 * const res = await hearth.invoke("hello", { body: "hi" });
 */
/** A trigger's definition: exactly one of `source` and `cron`; the rest default as in TRIGGER_DEFAULTS. */
export interface TriggerOptions {
  readonly source?: string;
  readonly cron?: string;
  readonly batchSize?: number;
  readonly batchWaitMs?: number;
  readonly maxConcurrency?: number;
  readonly retries?: number;
}

/** A trigger as the API shows it. */
export interface TriggerView {
  readonly id: string;
  readonly function: string;
  /** The source as a URL (password masked), or `cron(<expression>)`. */
  readonly source: string;
  readonly batchSize: number;
  readonly batchWaitMs: number;
  readonly maxConcurrency: number;
  readonly retries: number;
  readonly createdAt: string;
}

export class HearthClient {
  readonly url: string;
  readonly #token: string | undefined;
  readonly #dispatcher: Dispatcher | undefined;

  constructor(options: HearthClientOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#token = options.token;
    this.#dispatcher = options.dispatcher;
  }

  async deploy(name: string, options: DeployOptions): Promise<FunctionInfo> {
    const { function: info } = await this.#api<{ function: FunctionInfo }>(
      "PUT",
      `/v1/functions/${encodeURIComponent(name)}`,
      options,
    );
    return info;
  }

  async list(): Promise<FunctionInfo[]> {
    return (await this.#api<{ functions: FunctionInfo[] }>("GET", "/v1/functions")).functions;
  }

  async get(name: string): Promise<FunctionInfo> {
    return (await this.#api<{ function: FunctionInfo }>("GET", `/v1/functions/${encodeURIComponent(name)}`)).function;
  }

  async remove(name: string): Promise<void> {
    await this.#api("DELETE", `/v1/functions/${encodeURIComponent(name)}`);
  }

  /** Nodes, executors, functions with desired/actual capacity, the leader and recent scaling decisions. */
  async status(): Promise<ClusterStatusWithRoutes> {
    return this.#api<ClusterStatusWithRoutes>("GET", "/v1/status");
  }

  /** Takes no new pools on `node` and moves its pools away, so it can be stopped without a failed request. */
  async drainNode(node: string): Promise<void> {
    await this.#api("POST", `/v1/nodes/${encodeURIComponent(node)}/drain`);
  }

  /**
   * Queues an invocation (`Prefer: respond-async`): resolves once the gateway has stored it, with
   * its id; the function runs later. Throws HearthApiError when it was not accepted.
   *
   * @example
   * const { id } = await hearth.invokeAsync("resize", { body: image, idempotencyKey: uploadId });
   * const { state, response } = await hearth.invocation(id);
   */
  async invokeAsync(name: string, options: AsyncInvokeOptions = {}): Promise<AsyncInvocation> {
    const { idempotencyKey, callbackUrl, ...invoke } = options;
    const headers: Record<string, string> = { ...options.headers, prefer: "respond-async" };
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    if (callbackUrl !== undefined) headers["x-callback-url"] = callbackUrl;
    const res = await this.invoke(name, { ...invoke, headers });
    const accepted = parseAnswer<AsyncAccepted>(res.status, res.text(), `/fn/${name}`);
    if (res.status !== 202) {
      throw new HearthApiError(res.status, "ERR_BAD_RESPONSE", `Expected 202 from /fn/${name}, got ${res.status}`);
    }
    return { ...accepted, replayed: res.headers["idempotent-replayed"] === "true" };
  }

  /** An async invocation's state, attempts, timestamps and, once finished, its response. */
  async invocation(id: string): Promise<InvocationView> {
    const path = `/v1/invocations/${encodeURIComponent(id)}`;
    return (await this.#api<{ invocation: InvocationView }>("GET", path)).invocation;
  }

  /** Dead letters, oldest first: of one function, or of all when `fn` is undefined. */
  async deadLetters(fn?: string, options: DeadLetterListOptions = {}): Promise<DeadLetterPage> {
    const query = new URLSearchParams();
    if (fn !== undefined) query.set("function", fn);
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.after !== undefined) query.set("after", String(options.after));
    const search = query.size > 0 ? `?${query}` : "";
    return this.#api<DeadLetterPage>("GET", `/v1/dlq${search}`);
  }

  /** Puts `fn`'s dead letters (those with these sequences, else all) back in line; resolves with how many. */
  async replayDeadLetters(fn: string, seqs?: readonly number[]): Promise<number> {
    const body = { function: fn, ...(seqs !== undefined ? { seqs } : {}) };
    return (await this.#api<{ replayed: number }>("POST", "/v1/dlq/replay", body)).replayed;
  }

  /**
   * Adds an event trigger: `source` (nats://, jetstream://, amqp://, mqtt://) or `cron` (5 fields, UTC).
   *
   * @example
   * await hearth.addTrigger("on-order", { source: "amqp://guest:guest@127.0.0.1:5672/orders", batchSize: 20 });
   */
  async addTrigger(fn: string, options: TriggerOptions): Promise<TriggerView> {
    return (await this.#api<{ trigger: TriggerView }>("POST", "/v1/triggers", { function: fn, ...options })).trigger;
  }

  /** Triggers of one function, or of all. Sources are shown with their passwords masked. */
  async triggers(fn?: string): Promise<TriggerView[]> {
    const search = fn === undefined ? "" : `?function=${encodeURIComponent(fn)}`;
    return (await this.#api<{ triggers: TriggerView[] }>("GET", `/v1/triggers${search}`)).triggers;
  }

  async removeTrigger(id: string): Promise<void> {
    await this.#api("DELETE", `/v1/triggers/${encodeURIComponent(id)}`);
  }

  /** Calls a function over HTTP. Any status is returned, not thrown: it is the function's answer. */
  async invoke(name: string, options: InvokeOptions = {}): Promise<InvokeResponse> {
    const path = options.path ?? "/";
    const res = await request(`${this.url}/fn/${encodeURIComponent(name)}${path.startsWith("/") ? path : `/${path}`}`, {
      method: (options.method ?? (options.body === undefined ? "GET" : "POST")) as Dispatcher.HttpMethod,
      headers: options.headers,
      body: options.body,
      dispatcher: this.#dispatcher,
    });
    const body = new Uint8Array(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body, text: () => new TextDecoder().decode(body) };
  }

  async #api<T>(method: Dispatcher.HttpMethod, path: string, json?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    if (json !== undefined) headers["content-type"] = "application/json";
    const res = await request(`${this.url}${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      dispatcher: this.#dispatcher,
    });
    return parseAnswer<T>(res.statusCode, await res.body.text(), path);
  }
}

/** A JSON answer of the gateway; HearthApiError for an error status or a body that is not JSON. */
function parseAnswer<T>(status: number, text: string, path: string): T {
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    throw new HearthApiError(status, "ERR_BAD_RESPONSE", `Non-JSON answer from ${path}: ${text.slice(0, 200)}`);
  }
  if (status >= 400) {
    const error = (parsed as { error?: { code?: string; message?: string; errorId?: string } }).error ?? {};
    throw new HearthApiError(status, error.code ?? "ERR_UNKNOWN", error.message ?? `HTTP ${status}`, error.errorId);
  }
  return parsed as T;
}
