import type { Command } from "commander";
import { findProjectFile } from "../project.ts";
import { loadServer } from "../server-loader.ts";
import { action, client, KEEP_RUNNING } from "./args.ts";
import { deployFunction, projectFileOf, selectFunctions } from "./deploy-command.ts";
import type { Output } from "./output.ts";
import { watchProject } from "./watch.ts";

export function registerDevCommands(program: Command): void {
  program
    .command("dev")
    .description("Run a local cluster: nats-server, gateway, scheduler and workers (Ctrl-C stops it)")
    .option("-w, --watch", "also deploy the functions of hearth.toml, and again on every save")
    .option("-c, --config <file>", "with --watch: the project file (default: the nearest hearth.toml)")
    .action(
      action<{ watch?: boolean; config?: string }, []>(async ({ opts, out }) => {
        // Loaded here, not at the top: a CLI that only deploys never loads the server's code (in the
        // `hearth` package it is the separate hearth-server package: see server-loader.ts).
        const { startLocalCluster, devLogFormat } = await loadServer("dev");
        if (opts.watch && !opts.config && !findProjectFile())
          out.info("⚠ --watch: no hearth.toml here or above; create one with `hearth init`");
        const stopped = Promise.withResolvers<void>();
        // cluster.stop() is idempotent, so a second Ctrl-C just waits for the same shutdown.
        const stop = () => cluster.stop().then(stopped.resolve, stopped.reject);
        // A dead component is restarted alone; one line per restart says which, why and when.
        const cluster = await startLocalCluster({
          // Readable lines on a terminal, JSON for pipes and files, and for --json as for a pipe;
          // HEARTH_LOG_FORMAT overrides both (devLogFormat).
          logFormat: devLogFormat(process.env, out.json ? {} : process.stdout),
          onComponentExit: ({ role, pid, code, signal, restartInMs }) => {
            const how = signal ? `signal ${signal}` : `code ${code}`;
            out.info(`↻ ${role} (pid ${pid}) exited (${how}); restarting it in ${restartInMs} ms`);
          },
          onComponentRestart: ({ role, pid, previousPid, restarts }) => {
            out.result({ restarted: role, pid, previousPid, restarts });
          },
        });
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
        printBanner(out, cluster);
        if (opts.watch && (opts.config || findProjectFile())) {
          process.env.HEARTH_URL = cluster.url;
          const functions = selectFunctions(undefined, { config: opts.config });
          const hearth = client();
          const lastCode = new Map<string, string>();
          const deploy = (fn: (typeof functions)[number]) => deployFunction(hearth, fn, {}, out, lastCode);
          for (const fn of functions) await deploy(fn).catch((err: unknown) => out.error(err));
          void watchProject({
            functions,
            projectFile: projectFileOf(opts),
            reload: () => selectFunctions(undefined, { config: opts.config }),
            deploy,
            lastCode,
            out,
          });
        }
        await stopped.promise;
        return 0;
      }),
    );

  const roles = {
    gateway: "Run the HTTP gateway (env: NATS_URL, HEARTH_TOKEN, HEARTH_PORT)",
    scheduler: "Run the scheduler (env: NATS_URL)",
    worker: "Run a worker node (env: NATS_URL, HEARTH_EXECUTORS)",
  } as const;
  for (const [role, summary] of Object.entries(roles)) {
    program
      .command(role)
      .description(summary)
      .action(
        action(async () => {
          const server = await loadServer(role);
          await server.runRole(role as keyof typeof roles);
          return KEEP_RUNNING; // the component's signal handler exits the process
        }),
      );
  }
}

interface ClusterBanner {
  url: string;
  natsUrl: string;
  appNatsUrl?: string | null;
  tokenPath?: string | null;
  pids: unknown;
  metrics: Record<string, string>;
}

function printBanner(out: Output, cluster: ClusterBanner): void {
  // The app URL carries its password: printed here once, on purpose, as the one thing an application
  // needs for its events (`nats://` and `jetstream://` triggers); components never log it.
  out.result({
    url: cluster.url,
    natsUrl: cluster.natsUrl,
    appNatsUrl: cluster.appNatsUrl,
    tokenPath: cluster.tokenPath,
    pids: cluster.pids,
    metrics: { gateway: `${cluster.url}/metrics`, ...cluster.metrics },
  });
  out.info(`✔ Hearth is running at ${cluster.url}`);
  out.info(`  NATS: ${cluster.natsUrl}`);
  if (cluster.appNatsUrl)
    out.info(`  NATS for your app's events (nats:// and jetstream:// triggers): ${cluster.appNatsUrl}`);
  out.info(
    cluster.tokenPath
      ? `  Admin token: saved in ${cluster.tokenPath} (the CLI reads it)`
      : "  Admin token: from HEARTH_TOKEN",
  );
  const componentMetrics = Object.entries(cluster.metrics).map(([role, url]) => `${role} ${url}`);
  out.info(`  Metrics: ${cluster.url}/metrics (admin token); ${componentMetrics.join(", ")}`);
  out.info("  Deploy: npx hearth deploy ./hello.ts --name hello — Ctrl-C stops everything.");
}
