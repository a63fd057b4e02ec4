import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Writes a workerd config serving `moduleCode` (one ES module) on 127.0.0.1:port; returns its path. */
export function writeWorkerdConfig(moduleCode: string, port: number): string {
  const dir = mkdtempSync(join(tmpdir(), "hearth-bench-workerd-"));
  writeFileSync(join(dir, "worker.js"), moduleCode);
  const config = join(dir, "config.capnp");
  writeFileSync(
    config,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "2025-01-01",
);
`,
  );
  return config;
}
