/**
 * The SDK as the monorepo uses it: the `hearth-sdk` package's public API (public.ts) and the local-cluster
 * helpers behind `hearth dev`, which tests start clusters with.
 */

export type { LocalCluster, LocalClusterOptions } from "./dev/cluster.ts";
export { startLocalCluster } from "./dev/cluster.ts";
export type { NatsServer, NatsServerOptions } from "./dev/nats-server.ts";
export { findNatsServer, freePort, NATS_INSTALL_HINT, startNatsServer } from "./dev/nats-server.ts";
// One list of the public names, in public.ts, so the package and the monorepo cannot drift apart.
export * from "./public.ts";
