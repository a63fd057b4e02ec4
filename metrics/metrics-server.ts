import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { HearthError, intFromEnv, type Logger, silentLogger } from "../protocol/index.ts";

/** Where a scheduler or worker serves `GET /metrics`. */
export interface MetricsListen {
  /** Default 127.0.0.1: metrics name every function, so they stay on the host unless asked. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
}

export interface MetricsServerOptions extends MetricsListen {
  /** The exposition text, built on each scrape. */
  readonly metrics: () => Promise<string>;
  readonly log?: Logger;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** `http://host:port/metrics`. */
  readonly url: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export const DEFAULT_METRICS_HOST = "127.0.0.1";

/**
 * `HEARTH_METRICS_PORT` (unset or 0: no endpoint; `any`: a port the system picks when the server
 * binds, announced to the parent process, see announceMetrics) and `HEARTH_METRICS_HOST` (default
 * 127.0.0.1), or null when metrics are off. Read by the scheduler and the worker; the gateway serves
 * /metrics on its own port behind the admin token instead.
 */
export function metricsListenFromEnv(env: NodeJS.ProcessEnv): MetricsListen | null {
  const host = env.HEARTH_METRICS_HOST || DEFAULT_METRICS_HOST;
  if (env.HEARTH_METRICS_PORT === ANY_PORT) return Object.freeze({ host, port: 0 });
  const port = intFromEnv(env, "HEARTH_METRICS_PORT", 0);
  if (port > 65_535) throw new HearthError("ERR_BAD_REQUEST", `HEARTH_METRICS_PORT must be a port number, got ${port}`);
  if (port === 0) return null;
  return Object.freeze({ host, port });
}

/** `HEARTH_METRICS_PORT=any`: bind a free port (no window in which another process can take it). */
export const ANY_PORT = "any";

/** What a component sends its parent (`hearth dev`) over the IPC channel once /metrics listens. */
export interface MetricsAnnouncement {
  readonly type: "hearth-metrics";
  readonly url: string;
}

/** Tells the parent process where this component serves /metrics, when it has an IPC channel. */
export function announceMetrics(server: MetricsServer): void {
  const announcement: MetricsAnnouncement = { type: "hearth-metrics", url: server.url };
  process.send?.(announcement);
}

export function isMetricsAnnouncement(message: unknown): message is MetricsAnnouncement {
  const m = message as Partial<MetricsAnnouncement> | null;
  return typeof m === "object" && m !== null && m.type === "hearth-metrics" && typeof m.url === "string";
}

/**
 * A tiny node:http server for `GET /metrics` (Prometheus text format 0.0.4), shared by the scheduler and
 * the worker. Anything else is 404 (or 405 for another method on /metrics); a failing collection is a
 * 500 and a log line, never a crash.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const log = options.log ?? silentLogger();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not found: metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("Method not allowed\n");
      return;
    }
    options.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": Registry.PROMETHEUS_CONTENT_TYPE });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: unknown) => {
        log.error({ err }, "collecting metrics failed");
        res.writeHead(500, { "content-type": "text/plain" }).end("Collecting metrics failed; see the logs\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/metrics`;
  log.info({ url }, "metrics listening");
  let closed: Promise<void> | null = null;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  return { url, close, [Symbol.asyncDispose]: close };
}
