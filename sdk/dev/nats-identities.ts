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

/** The identities of a local cluster: one gateway, one scheduler, and a worker and an executor per node. */
export interface ClusterIdentities {
  readonly gateway: NatsIdentity;
  readonly scheduler: NatsIdentity;
  /** Node id → that node's worker and executor identities. */
  readonly nodes: ReadonlyMap<string, { readonly worker: NatsIdentity; readonly executor: NatsIdentity }>;
}

/**
 * New identities with random passwords (144 bits each) for these worker nodes. Users are named
 * `gateway`, `scheduler`, `worker.<node>` and `executor.<node>`.
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
  };
}

/** Every identity, gateway first. */
export function allIdentities(identities: ClusterIdentities): NatsIdentity[] {
  return [
    identities.gateway,
    identities.scheduler,
    ...[...identities.nodes.values()].flatMap(({ worker, executor }) => [worker, executor]),
  ];
}

/** The nats-server users for these identities, each with its role's permissions. */
export function natsUsersOf(identities: ClusterIdentities): NatsUserConfig[] {
  return allIdentities(identities).map(({ role, node, user, password }) => ({
    user,
    password,
    permissions: permissionsFor(role, user, node),
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
