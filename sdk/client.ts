import { type Dispatcher, request } from "undici";
import type { ClusterStatusWithRoutes, FunctionInfo } from "../protocol/index.ts";

export type { ClusterStatusWithRoutes as ClusterStatus, FunctionInfo };

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
}

export interface InvokeOptions {
  readonly method?: string;
  /** Path and query after the function's mount point, e.g. `/users/7?q=1`. */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
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
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new HearthApiError(
        res.statusCode,
        "ERR_BAD_RESPONSE",
        `Non-JSON answer from ${path}: ${text.slice(0, 200)}`,
      );
    }
    if (res.statusCode >= 400) {
      const error = (parsed as { error?: { code?: string; message?: string; errorId?: string } }).error ?? {};
      throw new HearthApiError(
        res.statusCode,
        error.code ?? "ERR_UNKNOWN",
        error.message ?? `HTTP ${res.statusCode}`,
        error.errorId,
      );
    }
    return parsed as T;
  }
}
