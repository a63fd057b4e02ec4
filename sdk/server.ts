/**
 * The server side of the CLI: what `hearth dev`, `hearth gateway`, `hearth scheduler` and
 * `hearth worker` run. The CLI reaches it only through loadServer() (server-loader.ts), so the
 * `hearth-sdk` package, which deploys, ships without it; the `hearth-server` package is this module
 * compiled, with isolated-vm, NATS and the rest of the server's dependencies.
 */

export type { LocalCluster, LocalClusterOptions } from "./dev/cluster.ts";
export { startLocalCluster } from "./dev/cluster.ts";
export { devLogFormat } from "./dev/log-view.ts";

/** A component that runs in this process until SIGINT/SIGTERM. */
export type ServerRole = "gateway" | "scheduler" | "worker";

/** Starts one component; each is imported on demand, so `hearth gateway` never loads isolated-vm. */
export async function runRole(role: ServerRole): Promise<void> {
  const roles = {
    gateway: () => import("../gateway/index.ts"),
    scheduler: () => import("../scheduler/index.ts"),
    worker: () => import("../runtime/index.ts"),
  };
  await (await roles[role]()).main();
}
