import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { createControlApi, type ModuleCheck, ModuleCheckProcess } from "../control/index.ts";
import {
  AsyncStore,
  DEFAULT_NAMESPACE,
  ensureLogStream,
  FunctionStore,
  type HeaderPairs,
  LIMITS,
  type Logger,
  NamespaceStore,
  parseHeartbeat,
  type SecretKeyring,
  SUBJECTS,
  silentLogger,
  TokenStore,
  TriggerStore,
  VersionStore,
} from "../protocol/index.ts";
import { AdmissionLimits } from "./admission-limits/index.ts";
import { TokenResolver } from "./auth.ts";
import { GatewayMetrics } from "./gateway-metrics.ts";
import { createAdmission, createHandler } from "./handler.ts";
import { type HttpLimits, parseFunctionsDomain, parseHttpLimits } from "./http-limits.ts";
import type { HttpRequest, HttpResponse } from "./http-types.ts";
import { Invoker } from "./invoker.ts";
import { createNodeServer } from "./node-server.ts";
import { RouteTable } from "./route-table.ts";
import type { Endpoint } from "./routing/endpoint.ts";
import type { PolicyName } from "./routing/policies.ts";

export interface GatewayOptions {
  readonly nc: NatsConnection;
  /** The operator's bootstrap token (HEARTH_TOKEN): always valid, admin. Other tokens live in the tokens bucket. */
  readonly token: string;
  readonly host?: string;
  /** 0 picks a free port (tests). */
  readonly port?: number;
  readonly maxBodyBytes?: number;
  /** How invocations pick among the executors holding a function (default: power of two choices). */
  readonly routingPolicy?: PolicyName;
  /** Header/request timeouts, keep-alive and connection cap of the HTTP server (DEFAULT_HTTP_LIMITS). */
  readonly http?: Partial<HttpLimits>;
  /**
   * Gives each function its own origin: with `fn.example`, Host `hello.fn.example` invokes `hello`
   * with the path as it is, beside `/fn/hello`. Needs a wildcard DNS record pointing at the gateway.
   */
  readonly functionsDomain?: string;
  /** Seals secrets (HEARTH_SECRETS_KEY, SecretKeyring.fromEnv); without it they cannot be set. */
  readonly secretsKeyring?: SecretKeyring | null;
  /**
   * Evaluates each deploy's module before it is stored. Default: a ModuleCheckProcess, which does it in
   * a child process that a module crashing V8 takes down instead of the gateway.
   */
  readonly moduleCheck?: ModuleCheck;
  /** Request counts and durations, cold starts, served at GET /metrics; a fresh registry by default. */
  readonly metrics?: GatewayMetrics;
  readonly log?: Logger;
}

/** Control API bodies carry a bundle and its source map as JSON strings: allow for escaping. */
const CONTROL_BODY_LIMIT = (LIMITS.maxBundleBytes + LIMITS.maxSourceMapBytes) * 2;
/** Readiness needs a worker and a scheduler leader heard from within this window. */
const PEER_FRESH_MS = 5_000;

/**
 * The HTTP gateway: invocations (sync, or async with `Prefer: respond-async`) under /fn/, the control
 * API (functions, invocation statuses, dead letters) under /v1/, health under /healthz and
 * /readyz. Stateless: any number can run against the same NATS.
 */
export class Gateway {
  readonly #options: GatewayOptions;
  readonly #log: Logger;
  /** This gateway's metrics (GET /metrics on its port, behind a token that may read everything). */
  readonly metrics: GatewayMetrics;
  readonly #routes = new RouteTable();
  readonly #maxBodyBytes: number;
  readonly #httpLimits: HttpLimits;
  /** `.fn.example`, or null when host-based routing is off. */
  readonly #functionsDomain: string | null;
  #server: Server | null = null;
  #heartbeats: Subscription | null = null;
  #lastWorkerBeatMs = 0;
  #lastLeaderBeatMs = 0;
  #leaderBeats: Subscription | null = null;
  #natsConnected = true;
  #handle: ((req: HttpRequest) => Promise<HttpResponse>) | null = null;
  #invoker: Invoker | null = null;
  #tokens: TokenResolver | null = null;
  #limits: AdmissionLimits | null = null;
  readonly #moduleCheck: ModuleCheck;
  /** The check process this gateway started (none when one was given): closed with it. */
  readonly #ownModuleCheck: ModuleCheckProcess | null;

  constructor(options: GatewayOptions) {
    this.#options = options;
    this.#log = options.log ?? silentLogger();
    if (options.moduleCheck) {
      this.#moduleCheck = options.moduleCheck;
      this.#ownModuleCheck = null;
    } else {
      this.#ownModuleCheck = new ModuleCheckProcess({ log: this.#log });
      this.#moduleCheck = this.#ownModuleCheck;
    }
    this.metrics = options.metrics ?? new GatewayMetrics();
    this.#maxBodyBytes = effectiveBodyLimit(options, this.#log);
    // Checked here, so a bad setting fails at construction with the field named, not at listen().
    this.#httpLimits = parseHttpLimits(options.http);
    this.#functionsDomain = options.functionsDomain ? parseFunctionsDomain(options.functionsDomain) : null;
  }

  /** Opens the buckets and streams, follows deploys and starts listening. Resolves with the base URL. */
  async start(): Promise<string> {
    const { nc } = this.#options;
    const [store, versions, asyncStore, triggers] = await Promise.all([
      FunctionStore.open(nc),
      VersionStore.open(nc),
      AsyncStore.open(nc),
      TriggerStore.open(nc),
    ]);
    await ensureLogStream(asyncStore.jsm);
    // One id for this gateway's load reports and admission counts: peers skip their own by it.
    const gatewayId = randomUUID().slice(0, 8);
    const invoker = new Invoker({
      nc,
      id: gatewayId,
      log: this.#log,
      policy: this.#options.routingPolicy,
      leaderHeardAt: () => this.#lastLeaderBeatMs,
    });
    this.#invoker = invoker;
    // Readiness and invocations follow the connection: nats.js reconnects forever, so "not closed"
    // is not "connected", and a request sent while disconnected would wait out its whole timeout.
    (async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect" || status.type === "reconnect") {
          this.#natsConnected = status.type === "reconnect";
          invoker.setConnected(this.#natsConnected);
          this.#log.warn({ status: status.type }, "NATS connection changed");
        }
      }
    })().catch(() => {});
    // A broken watch leaves the cache stale, not wrong for long: misses fall back to a KV read.
    await this.#routes.follow(store, (err) => this.#log.error({ err }, "function watch failed; route cache is stale"));
    this.#heartbeats = nc.subscribe(SUBJECTS.heartbeat, {
      callback: (err, msg) => {
        if (!err && parseHeartbeat(msg.data)) this.#lastWorkerBeatMs = Date.now();
      },
    });
    this.#leaderBeats = nc.subscribe(SUBJECTS.leader, {
      callback: (err) => {
        if (!err) this.#lastLeaderBeatMs = Date.now();
      },
    });
    // Tokens are known before the first request is served (TokenResolver.follow lists them first).
    const [tokens, namespaces] = await Promise.all([TokenStore.open(nc), NamespaceStore.open(nc)]);
    const resolver = new TokenResolver(this.#options.token);
    this.#tokens = resolver;
    await resolver.follow(tokens, (err) => this.#log.error({ err }, "token watch failed; revokes may not be seen"));
    const limits = new AdmissionLimits({
      nc,
      gatewayId,
      namespaceOf: (fn) => this.#routes.get(fn)?.namespace ?? DEFAULT_NAMESPACE,
      namespaces,
      log: this.#log,
    });
    this.#limits = limits;
    await limits.start();
    const principalOf = (req: { readonly headers: HeaderPairs }) => resolver.principalOf(req);
    const natsConnected = () => this.#natsConnected && !nc.isClosed();
    this.#handle = createHandler({
      store,
      versions,
      routes: this.#routes,
      invoker,
      limits,
      principalOf,
      readiness: () => this.#readiness(),
      control: createControlApi({
        nc,
        store,
        versions,
        triggers,
        asyncStore,
        natsConnected,
        tokens,
        namespaces,
        principalOf,
        routes: () => this.routes(),
        onFunctionChange: (fn, record, revision) => this.#routes.set(fn, record, revision),
        log: this.#log,
        secretsKeyring: this.#options.secretsKeyring ?? null,
        moduleCheck: this.#moduleCheck,
      }),
      asyncStore,
      natsConnected,
      log: this.#log,
      functionsDomain: this.#functionsDomain,
      metrics: this.metrics,
    });
    const handle = this.#handle;
    this.#server = createNodeServer({
      handle,
      admit: createAdmission({
        routes: this.#routes,
        principalOf,
        log: this.#log,
        functionsDomain: this.#functionsDomain,
        maxBodyBytes: this.#maxBodyBytes,
        controlBodyBytes: CONTROL_BODY_LIMIT,
      }),
      limits: this.#httpLimits,
      log: this.#log,
    });
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#options.port ?? 8080, this.#options.host ?? "127.0.0.1", () => resolve());
    });
    const url = this.url;
    this.#log.info(
      { url, maxBodyBytes: this.#maxBodyBytes, http: this.#httpLimits, functionsDomain: this.#functionsDomain },
      "gateway listening",
    );
    return url;
  }

  /** The gateway's handler, for in-process use without a socket. */
  handle(req: HttpRequest): Promise<HttpResponse> {
    if (!this.#handle) throw new Error("Gateway not started");
    return this.#handle(req);
  }

  /** The routing table: executors per function with their load, as this gateway sees them. */
  routes(): Record<string, Endpoint[]> {
    return this.#invoker?.router.snapshot() ?? {};
  }

  get url(): string {
    const address = this.#server?.address() as AddressInfo | null;
    if (!address) throw new Error("Gateway not listening");
    return `http://${address.address}:${address.port}`;
  }

  #readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.#options.nc.isClosed() || !this.#natsConnected) reasons.push("not connected to NATS");
    if (Date.now() - this.#lastWorkerBeatMs > PEER_FRESH_MS) reasons.push("no worker node heard from recently");
    // Warm functions are served without a scheduler, but cold starts are not.
    if (Date.now() - this.#lastLeaderBeatMs > PEER_FRESH_MS) reasons.push("no scheduler leader heard from recently");
    return { ready: reasons.length === 0, reasons };
  }

  /** Stops accepting connections and waits for in-flight requests to finish. Idempotent. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.#routes.stop();
    this.#tokens?.stop();
    this.#limits?.close();
    this.#heartbeats?.unsubscribe();
    this.#leaderBeats?.unsubscribe();
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    this.#invoker?.close();
    await this.#ownModuleCheck?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * A body must fit in one NATS message with its headers. If the server's max_payload is smaller
 * than the configured limit, the limit shrinks to fit and we say so (chunking arrives with issue 3).
 */
function effectiveBodyLimit(options: GatewayOptions, log: Logger): number {
  const wanted = options.maxBodyBytes ?? LIMITS.defaultMaxBodyBytes;
  const natsMax = options.nc.info?.max_payload;
  if (natsMax === undefined || natsMax - LIMITS.natsHeaderHeadroomBytes >= wanted) return wanted;
  const fitted = Math.max(0, natsMax - LIMITS.natsHeaderHeadroomBytes);
  log.warn(
    { wanted, natsMaxPayload: natsMax, effective: fitted },
    "NATS max_payload is too small for the configured body limit; raise max_payload in nats-server.conf",
  );
  return fitted;
}
