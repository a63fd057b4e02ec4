import { Readable } from "node:stream";
import { type Dispatcher, request } from "undici";
import type {
  Change,
  CreatedToken,
  DeadLetterPage,
  DeadLetterView,
  DeploymentView,
  NamespaceView,
  RestoreReport,
  Split,
  VersionView,
} from "../control/index.ts";
import type { AsyncAccepted, InvocationView, ResponseView } from "../gateway/index.ts";
import type {
  AsyncPolicy,
  ClusterStatusWithRoutes,
  FunctionInfo,
  LogEntry,
  NamespaceQuotas,
  ReencryptReport,
  SecretInfo,
  TokenView,
} from "../protocol/index.ts";

/** Quotas to set; `null` removes one. */
export type NamespaceQuotaChange = { readonly [K in keyof NamespaceQuotas]?: number | null };
export type { CreatedToken, NamespaceQuotas, NamespaceView, RestoreReport, TokenView };

import { partsOf } from "./backup-parts.ts";
import { type LogsOptions, logsQuery, readLogStream } from "./log-stream.ts";

export type {
  AsyncPolicy,
  ClusterStatusWithRoutes as ClusterStatus,
  DeadLetterPage,
  DeadLetterView,
  FunctionInfo,
  InvocationView,
  LogEntry,
  LogsOptions,
  ReencryptReport,
  ResponseView,
  SecretInfo,
};

export interface DeployOptions {
  /** Bundled single-file ES module source. */
  readonly code: string;
  /** Shown in server-side error messages. */
  readonly filename?: string;
  /**
   * The source map of `code` as JSON text (`Bundle.sourceMap`): kept with the version so stacks in
   * the function's logs, and a deploy refused for its top level, name `src/x.ts:line:col`.
   */
  readonly sourceMap?: string;
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
  /** The namespace that owns the function (a new one: a deploy:<ns> token's namespace, else "default"). Moving it needs admin. */
  readonly namespace?: string;
  /** "public" (default) or "private": invoking a private function needs a token with invoke:<ns>, deploy:<ns> or admin. */
  readonly access?: "public" | "private";
  /** Invocations admitted per period (1, 10 or 60 s) over all gateways, else 429; null removes the limit. */
  readonly rateLimit?: { readonly requests: number; readonly periodSeconds: number } | null;
  /** Kept with the version this deploy makes (`hearth versions ls`). */
  readonly message?: string;
  /** Serve the new version to this share of requests (1–100, default 100); the current one serves the rest. */
  readonly percent?: number;
}

export interface InvokeOptions {
  readonly method?: string;
  /** Path and query after the function's mount point, e.g. `/users/7?q=1`. */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Sent as `Authorization: Bearer`: what a private function needs. Hearth takes it off before the function sees the request. */
  readonly token?: string;
}

export interface AsyncInvokeOptions extends InvokeOptions {
  /** The same key with the same request within 24 h gets the first one's invocation, stored once. */
  readonly idempotencyKey?: string;
  /** An http(s) URL the result is POSTed to when the invocation ends. */
  readonly callbackUrl?: string;
}

/** A deploy's answer: the function as deployed, whether a new version was made, and what changed. */
export type DeployedFunction = FunctionInfo & { readonly newVersion: boolean; readonly changes: readonly Change[] };

export interface RollbackResult {
  readonly deployment: DeploymentView;
  /** What served before: one version at 100 %, or two. */
  readonly from: readonly Split[];
  readonly to: number;
  /** Secrets changed since the version returned to was made: it gets their current values. */
  readonly secretsChanged: readonly string[];
}

const functionPath = (name: string) => `/v1/functions/${encodeURIComponent(name)}`;

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
  /** An undici dispatcher (Agent, Pool, MockAgent) to reuse connections or point at a test server. */
  readonly dispatcher?: DispatcherLike;
}

/**
 * What `dispatcher` must be: an undici `Dispatcher`. Declared by shape, not as undici's type, so the
 * `hearth-sdk` package's declarations need no @types/node (undici's types import node:stream and friends)
 * in a project that only imports the handler types.
 */
export interface DispatcherLike {
  dispatch(options: never, handler: never): boolean;
}

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
    this.#dispatcher = options.dispatcher as Dispatcher | undefined;
  }

  /**
   * Deploys; what `options` leaves out keeps its current value. Says what changed and whether a version
   * was made. `onUpload` hears the bytes sent (a progress bar for large bundles).
   */
  async deploy(name: string, options: DeployOptions, onUpload?: UploadProgress): Promise<DeployedFunction> {
    const answer = await this.#api<{ function: FunctionInfo; version: number | null; changes: Change[] }>(
      "PUT",
      `/v1/functions/${encodeURIComponent(name)}`,
      options,
      onUpload,
    );
    return { ...answer.function, newVersion: answer.version !== null, changes: answer.changes };
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

  /** The function's kept versions, newest first, each with the share of requests it serves now. */
  async versions(name: string): Promise<VersionView[]> {
    return (await this.#api<{ versions: VersionView[] }>("GET", `${functionPath(name)}/versions`)).versions;
  }

  async deployment(name: string): Promise<DeploymentView> {
    return (await this.#api<{ deployment: DeploymentView }>("GET", `${functionPath(name)}/deployment`)).deployment;
  }

  /** Serves one version, or two with percentages adding up to 100 (a canary). */
  async setDeployment(name: string, versions: readonly Split[]): Promise<DeploymentView> {
    const path = `${functionPath(name)}/deployment`;
    return (await this.#api<{ deployment: DeploymentView }>("PUT", path, { versions })).deployment;
  }

  /** Returns to `to`, or to the version that served every request before the current deployment. */
  async rollback(name: string, to?: number): Promise<RollbackResult> {
    return this.#api<RollbackResult>("POST", `${functionPath(name)}/rollback`, to === undefined ? {} : { to });
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

  /**
   * Creates an API token (admin only). Its `token` is shown this once: store it now.
   *
   * @example
   * const { token } = await hearth.createToken("ci", ["deploy:team-a"]);
   */
  async createToken(name: string, scopes: readonly string[]): Promise<CreatedToken> {
    return (await this.#api<{ token: CreatedToken }>("POST", "/v1/tokens", { name, scopes })).token;
  }

  /** Every token's id, name, scopes and creation time; never a token or its hash. */
  async tokens(): Promise<TokenView[]> {
    return (await this.#api<{ tokens: TokenView[] }>("GET", "/v1/tokens")).tokens;
  }

  /** Revokes a token by its id: every gateway refuses it within a watch delivery. */
  async revokeToken(id: string): Promise<void> {
    await this.#api("DELETE", `/v1/tokens/${encodeURIComponent(id)}`);
  }

  /** Creates a namespace with these quotas (admin only); fails with ERR_NAMESPACE_CONFLICT if it exists. */
  async createNamespace(name: string, quotas: NamespaceQuotaChange = {}): Promise<NamespaceView> {
    const path = `/v1/namespaces/${encodeURIComponent(name)}`;
    return (await this.#api<{ namespace: NamespaceView }>("POST", path, { quotas })).namespace;
  }

  /** Sets quotas of a namespace (creating it if needed): those named change, `null` removes one, the rest stay. */
  async setNamespace(name: string, quotas: NamespaceQuotaChange): Promise<NamespaceView> {
    const path = `/v1/namespaces/${encodeURIComponent(name)}`;
    return (await this.#api<{ namespace: NamespaceView }>("PUT", path, { quotas })).namespace;
  }

  /** Every namespace (with "default") and what it holds. */
  async namespaces(): Promise<NamespaceView[]> {
    return (await this.#api<{ namespaces: NamespaceView[] }>("GET", "/v1/namespaces")).namespaces;
  }

  async namespace(name: string): Promise<NamespaceView> {
    const path = `/v1/namespaces/${encodeURIComponent(name)}`;
    return (await this.#api<{ namespace: NamespaceView }>("GET", path)).namespace;
  }

  /** Removes an empty namespace. */
  async removeNamespace(name: string): Promise<void> {
    await this.#api("DELETE", `/v1/namespaces/${encodeURIComponent(name)}`);
  }

  /** The secrets of a function: names, KV revisions and update times, never values. */
  async secrets(fn: string): Promise<SecretInfo[]> {
    const path = `/v1/functions/${encodeURIComponent(fn)}/secrets`;
    return (await this.#api<{ secrets: SecretInfo[] }>("GET", path)).secrets;
  }

  /**
   * Sets a secret (sealed at rest); the function gets it as `env.<name>` from its next version, made
   * by this call. Answers the secret's revision and the function's new version.
   */
  async putSecret(fn: string, name: string, value: string): Promise<{ revision: number; version: string }> {
    const path = `/v1/functions/${encodeURIComponent(fn)}/secrets/${encodeURIComponent(name)}`;
    const answer = await this.#api<{ secret: { revision: number }; version: string }>("PUT", path, { value });
    return { revision: answer.secret.revision, version: answer.version };
  }

  /** Removes a secret; the function's next version (made by this call) no longer has it. */
  async removeSecret(fn: string, name: string): Promise<void> {
    await this.#api("DELETE", `/v1/functions/${encodeURIComponent(fn)}/secrets/${encodeURIComponent(name)}`);
  }

  /** Reseals every secret with the gateway's current key (after a rotation); says how many. */
  async reencryptSecrets(): Promise<ReencryptReport> {
    return this.#api<ReencryptReport>("POST", "/v1/secrets/reencrypt");
  }

  /**
   * The whole control-plane state as a backup archive (gzip'd NDJSON, docs/backup.md), streamed as
   * the gateway reads it. A stream that ends without the archive's end line was cut short: readBackup
   * refuses it.
   */
  async backup(signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const headers: Record<string, string> = this.#token ? { authorization: `Bearer ${this.#token}` } : {};
    const res = await request(`${this.url}/v1/backup`, {
      method: "GET",
      headers,
      dispatcher: this.#dispatcher,
      signal,
    });
    if (res.statusCode !== 200) parseAnswer<never>(res.statusCode, await res.body.text(), "/v1/backup");
    return res.body;
  }

  /**
   * Restores an archive from backup(): sent in parts the gateway admits (a session: open, parts,
   * commit), checked whole by the gateway before anything is written. Refused (ERR_CLUSTER_NOT_EMPTY)
   * when the cluster has functions, unless `force`. `onPart` hears the bytes sent so far.
   */
  async restore(
    archive: AsyncIterable<Uint8Array> | Uint8Array,
    options: {
      readonly force?: boolean;
      readonly onPart?: (sentBytes: number) => void;
      /** Bytes per request: at most (and by default) what the gateway asks for. */
      readonly partBytes?: number;
    } = {},
  ): Promise<RestoreReport> {
    const opened = await this.#api<{ id: string; partBytes: number }>("POST", "/v1/restore");
    const { id } = opened;
    const partBytes = Math.min(opened.partBytes, options.partBytes ?? opened.partBytes);
    const session = `/v1/restore/${id}`;
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    try {
      let index = 0;
      let sent = 0;
      for await (const part of partsOf(archive, partBytes)) {
        const path = `${session}/parts/${index++}`;
        const res = await request(`${this.url}${path}`, {
          method: "PUT",
          headers,
          body: part,
          dispatcher: this.#dispatcher,
        });
        parseAnswer(res.statusCode, await res.body.text(), path);
        sent += part.length;
        options.onPart?.(sent);
      }
      return await this.#api<RestoreReport>("POST", `${session}/commit${options.force ? "?force=1" : ""}`);
    } catch (err) {
      // A session the gateway still holds (a part failed) is dropped; a commit drops its own.
      await this.#api("DELETE", session).catch(() => {});
      throw err;
    }
  }

  /** Calls a function over HTTP. Any status is returned, not thrown: it is the function's answer. */
  async invoke(name: string, options: InvokeOptions = {}): Promise<InvokeResponse> {
    const path = options.path ?? "/";
    const res = await request(`${this.url}/fn/${encodeURIComponent(name)}${path.startsWith("/") ? path : `/${path}`}`, {
      method: (options.method ?? (options.body === undefined ? "GET" : "POST")) as Dispatcher.HttpMethod,
      headers: options.token ? { ...options.headers, authorization: `Bearer ${options.token}` } : options.headers,
      body: options.body,
      dispatcher: this.#dispatcher,
    });
    const body = new Uint8Array(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body, text: () => new TextDecoder().decode(body) };
  }

  /**
   * A function's log entries, oldest first: the retained ones, then with `follow` new ones as they
   * are written, until `signal` aborts. Each entry is a console line, an error, or a drop marker.
   *
   * @example
   * for await (const entry of hearth.logs("hello", { follow: true, status: "error" })) console.log(entry.message);
   */
  logs(name: string, options: LogsOptions = {}): AsyncGenerator<LogEntry> {
    const headers: Record<string, string> = this.#token ? { authorization: `Bearer ${this.#token}` } : {};
    const path = `/v1/functions/${encodeURIComponent(name)}/logs`;
    return readLogStream(
      `${this.url}${path}${logsQuery(options)}`,
      headers,
      options,
      this.#dispatcher,
      (status, text) => parseAnswer<never>(status, text, path),
    );
  }

  async #api<T>(method: Dispatcher.HttpMethod, path: string, json?: unknown, onUpload?: UploadProgress): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    let body: string | Readable | undefined;
    if (json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(json);
      if (onUpload) {
        const bytes = Buffer.from(body);
        headers["content-length"] = String(bytes.byteLength);
        body = Readable.from(uploadChunks(bytes, onUpload), { objectMode: false });
      }
    }
    const res = await request(`${this.url}${path}`, { method, headers, body, dispatcher: this.#dispatcher });
    return parseAnswer<T>(res.statusCode, await res.body.text(), path);
  }
}

/** Told the bytes sent so far and the total, after each chunk of an upload. */
export type UploadProgress = (sentBytes: number, totalBytes: number) => void;

const UPLOAD_CHUNK_BYTES = 256 * 1024;

/** A body in chunks, reporting each one as the socket takes it (undici pulls the next when it can write). */
async function* uploadChunks(bytes: Buffer, onUpload: UploadProgress): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += UPLOAD_CHUNK_BYTES) {
    const chunk = bytes.subarray(offset, offset + UPLOAD_CHUNK_BYTES);
    yield chunk;
    onUpload(offset + chunk.byteLength, bytes.byteLength);
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
