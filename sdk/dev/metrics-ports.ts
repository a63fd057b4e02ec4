import { createServer } from "node:net";

/**
 * A port free on `host` now: bound to 0, read, released. Another process could take it before the
 * component binds it; on a developer's machine that is rare, and the component then fails to start
 * with EADDRINUSE (and is restarted by `hearth dev` with the same port), which says what happened.
 */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * `HEARTH_METRICS_PORT` (and host) for each of `hearth dev`'s schedulers and workers: a port of its own,
 * fixed for the life of the cluster, so a restarted component serves /metrics where it did before.
 * The gateway serves its /metrics on its own port, behind the admin token.
 */
export async function metricsPortsFor(roles: readonly string[], host: string): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  for (const role of roles)
    if (role === "scheduler" || role.startsWith("worker-")) ports.set(role, await freePort(host));
  return ports;
}
