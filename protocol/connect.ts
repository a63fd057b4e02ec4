import { readFileSync } from "node:fs";
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
  type TlsOptions,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
import { HearthError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** How a process proves who it is to NATS. */
export type NatsAuthKind = "none" | "user" | "token" | "nkey" | "creds";

/**
 * NATS connection settings of one Hearth process, validated and frozen by {@link natsOptionsFromEnv}.
 * Holds no secret in a form that could be logged: credentials live inside `authenticator`.
 */
export interface NatsSettings {
  /** Server addresses with any `user:pass@` removed. */
  readonly servers: readonly string[];
  /** `servers` joined as one NATS_URL value: safe to log and to hand to child processes. */
  readonly url: string;
  readonly auth: NatsAuthKind;
  /** The user name with `auth: "user"`, for logs. */
  readonly user: string | undefined;
  readonly authenticator: Authenticator | undefined;
  /** Set when TLS is required: a `tls://` URL or any NATS_TLS_* variable. */
  readonly tls: Readonly<TlsOptions> | undefined;
  /** Where replies to this process go: `<prefix>.<random>`. */
  readonly inboxPrefix: string | undefined;
}

/**
 * The inbox prefix of a user: `_INBOX_<user>`, every character outside `[A-Za-z0-9_-]` made `_`.
 * Per-user inboxes let NATS permissions give each identity its own replies only (docs/security.md, "NATS with least privilege").
 */
export function inboxPrefixOf(user: string): string {
  return `_INBOX_${user.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

const CREDENTIAL_VARS = ["NATS_USER", "NATS_TOKEN", "NATS_NKEY_SEED_FILE", "NATS_CREDS"] as const;

/**
 * Reads the NATS settings of a Hearth process from its environment; throws ERR_BAD_REQUEST naming
 * the variable at fault. One way to authenticate at most:
 *
 * - `NATS_URL` (required): one or more servers, comma-separated, `nats://` or `tls://`; a URL may
 *   carry `user:password@` or `token@` (percent-encoded), as the Go client reads them.
 * - `NATS_USER` + `NATS_PASSWORD`, or `NATS_TOKEN`, or `NATS_NKEY_SEED_FILE` (a file holding an
 *   nkey user seed, `SU...`), or `NATS_CREDS` (a `.creds` file: user JWT and seed). Files are read
 *   at each (re)connect, so rotated credentials apply without a restart.
 * - `NATS_TLS_CA`, `NATS_TLS_CERT` + `NATS_TLS_KEY`: PEM files; any of them makes TLS required.
 * - `NATS_INBOX_PREFIX`: default `_INBOX_<user>` with a user (see {@link inboxPrefixOf}), else `_INBOX`.
 *
 * nats.js 3 strips `user:pass@` from server URLs and never sends it, and takes a numeric password
 * for the port, hence the parsing here.
 *
 * @example
 * const nc = await connectNats(natsOptionsFromEnv(process.env), "hearth-gateway", log);
 */
export function natsOptionsFromEnv(env: NodeJS.ProcessEnv): NatsSettings {
  const raw = env.NATS_URL;
  if (!raw) throw bad("NATS_URL is required");
  const parsed = raw.split(",").map((entry) => parseServer(entry.trim()));
  const fromUrl = parsed.map((p) => p.credentials).find((c) => c !== undefined);
  if (parsed.some((p) => p.credentials && JSON.stringify(p.credentials) !== JSON.stringify(fromUrl))) {
    throw bad("NATS_URL: every server that carries credentials must carry the same ones");
  }
  const given = CREDENTIAL_VARS.filter((name) => env[name]);
  if (given.length + (fromUrl ? 1 : 0) > 1) {
    const sources = [...given, ...(fromUrl ? ["credentials in NATS_URL"] : [])];
    throw bad(`Set one way to authenticate to NATS, not ${sources.join(" and ")}`);
  }
  if (env.NATS_PASSWORD && !env.NATS_USER) throw bad("NATS_PASSWORD is set but NATS_USER is not");
  if (env.NATS_USER && !env.NATS_PASSWORD) throw bad("NATS_USER is set but NATS_PASSWORD is not");

  let auth: NatsAuthKind = "none";
  let user: string | undefined;
  let authenticator: Authenticator | undefined;
  if (fromUrl?.user !== undefined) {
    auth = "user";
    user = fromUrl.user;
    authenticator = usernamePasswordAuthenticator(fromUrl.user, fromUrl.password);
  } else if (fromUrl?.token !== undefined) {
    auth = "token";
    authenticator = tokenAuthenticator(fromUrl.token);
  } else if (env.NATS_USER) {
    auth = "user";
    user = env.NATS_USER;
    authenticator = usernamePasswordAuthenticator(env.NATS_USER, env.NATS_PASSWORD);
  } else if (env.NATS_TOKEN) {
    auth = "token";
    authenticator = tokenAuthenticator(env.NATS_TOKEN);
  } else if (env.NATS_NKEY_SEED_FILE) {
    const path = readable(env, "NATS_NKEY_SEED_FILE");
    auth = "nkey";
    authenticator = nkeyAuthenticator(() => new TextEncoder().encode(readFileSync(path, "utf8").trim()));
  } else if (env.NATS_CREDS) {
    const path = readable(env, "NATS_CREDS");
    auth = "creds";
    authenticator = credsAuthenticator(() => readFileSync(path));
  }

  if (env.NATS_TLS_CERT && !env.NATS_TLS_KEY) throw bad("NATS_TLS_CERT is set but NATS_TLS_KEY is not");
  if (env.NATS_TLS_KEY && !env.NATS_TLS_CERT) throw bad("NATS_TLS_KEY is set but NATS_TLS_CERT is not");
  const tlsFiles = {
    ...(env.NATS_TLS_CA ? { caFile: readable(env, "NATS_TLS_CA") } : {}),
    ...(env.NATS_TLS_CERT ? { certFile: readable(env, "NATS_TLS_CERT") } : {}),
    ...(env.NATS_TLS_KEY ? { keyFile: readable(env, "NATS_TLS_KEY") } : {}),
  };
  const tlsRequired = Object.keys(tlsFiles).length > 0 || parsed.some((p) => p.tls);

  const inboxPrefix = env.NATS_INBOX_PREFIX || (user !== undefined ? inboxPrefixOf(user) : undefined);
  if (inboxPrefix !== undefined && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(inboxPrefix)) {
    throw bad(`NATS_INBOX_PREFIX must be a subject without wildcards, got ${JSON.stringify(inboxPrefix)}`);
  }
  const servers = Object.freeze(parsed.map((p) => p.server));
  return Object.freeze({
    servers,
    url: servers.join(","),
    auth,
    user,
    authenticator,
    tls: tlsRequired ? Object.freeze(tlsFiles) : undefined,
    inboxPrefix,
  });
}

interface ParsedServer {
  readonly server: string;
  readonly tls: boolean;
  readonly credentials?: { user?: string; password?: string; token?: string };
}

/** `[scheme://][userinfo@]host[:port]`; the authority ends at the last `@`, userinfo is percent-decoded. */
function parseServer(entry: string): ParsedServer {
  const match = /^(?:([A-Za-z][A-Za-z0-9+.-]*):\/\/)?(.*)$/.exec(entry);
  const scheme = (match?.[1] ?? "nats").toLowerCase();
  const rest = match?.[2] ?? "";
  if (!["nats", "tls"].includes(scheme)) throw bad(`NATS_URL: unsupported scheme ${scheme}:// in ${redact(entry)}`);
  const at = rest.lastIndexOf("@");
  const hostPort = rest.slice(at + 1).replace(/\/+$/, "");
  if (!hostPort) throw bad(`NATS_URL: no host in ${redact(entry)}`);
  const server = `${scheme}://${hostPort}`;
  if (at < 0) return { server, tls: scheme === "tls" };
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(":");
  const decode = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw bad(`NATS_URL: malformed percent-encoding in the credentials of ${redact(entry)}`);
    }
  };
  const credentials =
    colon < 0
      ? { token: decode(userinfo) }
      : { user: decode(userinfo.slice(0, colon)), password: decode(userinfo.slice(colon + 1)) };
  return { server, tls: scheme === "tls", credentials };
}

/** The entry with any credentials hidden, for error messages. */
function redact(entry: string): string {
  return entry.replace(/^((?:[A-Za-z][A-Za-z0-9+.-]*:\/\/)?).*@/, "$1***@");
}

function readable(env: NodeJS.ProcessEnv, name: string): string {
  const path = env[name] as string;
  try {
    readFileSync(path);
  } catch (err) {
    throw bad(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  return path;
}

function bad(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", message);
}

/**
 * Connects one Hearth process to NATS: `settings` from {@link natsOptionsFromEnv}, or a bare URL
 * (which may carry credentials). Reconnects forever: components outlive NATS restarts, and nats.js
 * buffers publishes while reconnecting. With `log`, every error the server reports afterwards (a
 * permission violation above all: nats.js reports refused publishes nowhere else) is logged.
 *
 * `noAsyncTraces`: by default nats.js builds two Error objects (stack traces) for every request, in
 * case it fails; a CPU profile of the gateway under load put them at 20% of its time.
 */
export async function connectNats(
  settings: NatsSettings | string,
  name: string,
  log?: Logger,
): Promise<NatsConnection> {
  const s = typeof settings === "string" ? natsOptionsFromEnv({ NATS_URL: settings }) : settings;
  const nc = await connect({
    servers: [...s.servers],
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    noAsyncTraces: true,
    ...(s.authenticator ? { authenticator: s.authenticator } : {}),
    ...(s.tls ? { tls: { ...s.tls } } : {}),
    ...(s.inboxPrefix ? { inboxPrefix: s.inboxPrefix } : {}),
  });
  if (log) void logServerErrors(nc, log);
  return nc;
}

async function logServerErrors(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const status of nc.status()) {
    if (status.type === "error") log.error({ err: status.error }, "NATS reported an error");
  }
}
