import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats, natsOptionsFromEnv } from "../../protocol/index.ts";
import { identitiesPath, type NatsIdentity, natsEnvOf } from "../../sdk/dev/nats-identities.ts";

/** The identities `hearth dev` saved in its HEARTH_HOME (see docs/security.md, "NATS with least privilege"). */
export function devIdentities(home: string): NatsIdentity[] {
  return JSON.parse(readFileSync(identitiesPath({ HEARTH_HOME: home }), "utf8")) as NatsIdentity[];
}

/**
 * A NATS connection to a `hearth dev` cluster as one of its identities (default the gateway's,
 * which may send invocations and hear load reports): its nats-server refuses anonymous clients.
 */
export function connectToDevNats(
  cluster: { natsUrl: string; home: string },
  user = "gateway",
): Promise<NatsConnection> {
  const identity = devIdentities(cluster.home).find((i) => i.user === user);
  if (!identity) throw new Error(`hearth dev in ${cluster.home} has no NATS user ${user}`);
  return connectNats(natsOptionsFromEnv({ NATS_URL: cluster.natsUrl, ...natsEnvOf(identity) }), `test-${user}`);
}
