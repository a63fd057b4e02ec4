import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hearthHome } from "../config.ts";
import { type NatsRole, type NatsUserConfig, permissionsFor } from "./nats-permissions.ts";

/** One NATS user of a local cluster. */
export interface NatsIdentity {
  readonly role: NatsRole;
  /** The worker node, for `worker` and `executor`. */
  readonly node?: string;
  readonly user: string;
  readonly password: string;
}

/**
 * The identities of a local cluster: one gateway, one scheduler, a worker and an executor per node,
 * and one `app` identity for applications' own events (which workers also use to read `nats://`
 * trigger sources).
 */
export interface ClusterIdentities {
  readonly gateway: NatsIdentity;
  readonly scheduler: NatsIdentity;
  /** Node id → that node's worker and executor identities. */
  readonly nodes: ReadonlyMap<string, { readonly worker: NatsIdentity; readonly executor: NatsIdentity }>;
  readonly app: NatsIdentity;
}

/**
 * New identities with random passwords (144 bits each) for these worker nodes. Users are named
 * `gateway`, `scheduler`, `worker.<node>`, `executor.<node>` and `app`.
 */
export function createClusterIdentities(nodes: readonly string[]): ClusterIdentities {
  const identity = (role: NatsRole, node?: string): NatsIdentity => ({
    role,
    ...(node !== undefined ? { node } : {}),
    user: node === undefined ? role : `${role}.${node}`,
    password: randomBytes(18).toString("base64url"),
  });
  return {
    gateway: identity("gateway"),
    scheduler: identity("scheduler"),
    nodes: new Map(
      nodes.map((node) => [node, { worker: identity("worker", node), executor: identity("executor", node) }]),
    ),
    app: identity("app"),
  };
}

/** Every identity, gateway first, app last. */
export function allIdentities(identities: ClusterIdentities): NatsIdentity[] {
  return [
    identities.gateway,
    identities.scheduler,
    ...[...identities.nodes.values()].flatMap(({ worker, executor }) => [worker, executor]),
    identities.app,
  ];
}

/** The nats-server users for these identities, each with its role's permissions (the app's deny every other inbox). */
export function natsUsersOf(identities: ClusterIdentities): NatsUserConfig[] {
  const all = allIdentities(identities);
  const users = all.map((identity) => identity.user);
  return all.map(({ role, node, user, password }) => ({
    user,
    password,
    permissions: permissionsFor(role, user, node, users),
  }));
}

/** The environment that makes a Hearth process connect as `identity`. */
export function natsEnvOf(identity: NatsIdentity): Record<string, string> {
  return { NATS_USER: identity.user, NATS_PASSWORD: identity.password };
}

/**
 * The environment a worker passes on to its executors (the worker maps these to NATS_USER and
 * NATS_PASSWORD for them, and never hands over its own).
 */
export function executorNatsEnvOf(identity: NatsIdentity): Record<string, string> {
  return { HEARTH_EXECUTOR_NATS_USER: identity.user, HEARTH_EXECUTOR_NATS_PASSWORD: identity.password };
}

/**
 * The environment that makes a worker read `nats://` trigger sources as `identity` (the app
 * identity): the worker opens a second connection with it and never hands it to its executors.
 */
export function ingestNatsEnvOf(identity: NatsIdentity): Record<string, string> {
  return { HEARTH_INGEST_NATS_USER: identity.user, HEARTH_INGEST_NATS_PASSWORD: identity.password };
}

/**
 * `nats://user:password@host:port`, percent-encoded: a URL an application (or `nats --server`) can
 * connect with as `identity`. Hearth's own processes and the Go client read the credentials from it;
 * nats.js 3 alone ignores them (give it `user` and `pass`, or use Hearth's `natsOptionsFromEnv`).
 *
 * @example
 * natsUrlWithCredentials("nats://127.0.0.1:4222", app) // "nats://app:Xy...@127.0.0.1:4222"
 */
export function natsUrlWithCredentials(natsUrl: string, identity: NatsIdentity): string {
  const userinfo = `${encodeURIComponent(identity.user)}:${encodeURIComponent(identity.password)}@`;
  return natsUrl.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?/, (scheme) => `${scheme || "nats://"}${userinfo}`);
}

/** Where `hearth dev` writes its NATS identities: beside the admin token, `$HEARTH_HOME/nats-identities.json`. */
export function identitiesPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(hearthHome(env), "nats-identities.json");
}

/**
 * Writes the identities as JSON `[{ role, node?, user, password }]`, readable by the owner only
 * (mode 0600), so an operator can connect as any role to look around (`nats --user ... --password ...`).
 */
export function saveIdentities(path: string, identities: ClusterIdentities): void {
  writePrivateFile(path, `${JSON.stringify(allIdentities(identities), null, 2)}\n`);
}

/** Writes a file only its owner can read: created afresh, so an older copy's mode cannot linger. */
export function writePrivateFile(path: string, text: string): void {
  rmSync(path, { force: true });
  writeFileSync(path, text, { mode: 0o600, flag: "wx" });
}
