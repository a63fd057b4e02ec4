import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Writes a workerd config serving `script` (an ES module) on 127.0.0.1:port; returns its path. */
export function writeWorkerdConfig(script: string, port: number): string {
  const dir = mkdtempSync(join(tmpdir(), "hearth-bench-workerd-"));
  copyFileSync(script, join(dir, "worker.js"));
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
