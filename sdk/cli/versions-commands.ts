import type { Command } from "commander";
import type { Change, Split } from "../../control/index.ts";
import type { DeployedFunction } from "../client.ts";
import { action, client, int } from "./args.ts";
import { formatBytes, UsageError } from "./output.ts";

/** What `hearth deploy` prints: the version made (or that nothing changed), what changed, where it is. */
export function describeDeploy(info: DeployedFunction): string[] {
  const size = `${formatBytes(info.bundleBytes)}, ${info.digest.slice(0, 12)}`;
  const lines = info.newVersion
    ? [`✔ Deployed ${info.name}: version ${info.canary?.id ?? info.versionId} (${size})`]
    : [
        `✔ ${info.name}: ${info.changes.length === 0 ? "nothing changed" : "settings changed, no new version"} (version ${info.versionId})`,
      ];
  for (const change of info.changes) lines.push(`  ${describeChange(change)}`);
  if (info.canary) {
    lines.push(
      `  version ${info.canary.id} serves ${info.canary.percent} % of requests, version ${info.versionId} the rest` +
        ` (hearth rollout ${info.name} ${info.canary.id} to promote, hearth rollback ${info.name} to undo)`,
    );
  }
  lines.push(`  ${info.url}`);
  return lines;
}

function describeChange({ field, from, to }: Change): string {
  if (field === "code" || field === "sourceMap") return `${field} ${from ?? "(none)"} → ${to ?? "(none)"}`;
  // Plain variables are visible, but a terminal log is no place for their values.
  if (field.startsWith("env."))
    return `${field} ${from === undefined ? "added" : to === undefined ? "removed" : "changed"}`;
  const show = (v: unknown) => (v === undefined ? "(default)" : JSON.stringify(v));
  return `${field} ${show(from)} → ${show(to)}`;
}

function describeSplits(splits: readonly Split[]): string {
  return splits.map((v) => `version ${v.id} ${v.percent} %`).join(", ");
}

export function registerVersionsCommands(program: Command): void {
  program
    .command("versions")
    .description("List a function's kept versions (the last 100), newest first, with the share each serves")
    .argument("<fn>", "the function's name")
    .action(
      action(async ({ out }, name: string) => {
        const list = await client().versions(name);
        out.result(list);
        for (const v of list) {
          const serving = v.percent > 0 ? `${v.percent} %`.padStart(5) : "    -";
          const secrets = Object.keys(v.secrets ?? {});
          out.info(
            `${String(v.id).padStart(4)}  ${serving}  ${v.createdAt}  ${v.digest.slice(0, 12)}` +
              `${secrets.length ? `  secrets: ${secrets.join(", ")}` : ""}${v.message ? `  ${v.message}` : ""}`,
          );
        }
        return 0;
      }),
    );

  program
    .command("rollout")
    .description("Serve a version to a share of requests (the current version serves the rest), or to all (default)")
    .argument("<fn>", "the function's name")
    .argument("<version>", "the version's number (see `hearth versions`)", int())
    .option("--percent <1-100>", "its share of requests", int())
    .action(
      action<{ percent?: number }, [string, number]>(async ({ opts, out }, name, id) => {
        const percent = opts.percent ?? 100;
        if (percent > 100) throw new UsageError("--percent must be at most 100");
        const hearth = client();
        let splits = [{ id, percent: 100 }];
        if (percent < 100) {
          const current = await hearth.deployment(name);
          // The version serving most requests now keeps the rest.
          const main = [...current.versions].sort((a, b) => b.percent - a.percent)[0];
          if (!main || main.id === id)
            throw new UsageError(`version ${id} already serves ${name}; name another version`);
          splits = [
            { id: main.id, percent: 100 - percent },
            { id, percent },
          ];
        }
        const deployment = await hearth.setDeployment(name, splits);
        out.result(deployment);
        out.info(`✔ ${name}: ${describeSplits(deployment.versions)}`);
        return 0;
      }),
    );

  program
    .command("rollback")
    .description("Return to the last version that served every request (or the one named), in one step")
    .argument("<fn>", "the function's name")
    .option("--to <version>", "this version instead", int())
    .action(
      action<{ to?: number }, [string]>(async ({ opts, out }, name) => {
        const result = await client().rollback(name, opts.to);
        out.result(result);
        out.info(`✔ ${name}: version ${result.to} serves every request (was ${describeSplits(result.from)})`);
        if (result.secretsChanged.length > 0) {
          out.info(
            `  ⚠ secrets changed since version ${result.to} was made: ${result.secretsChanged.join(", ")}` +
              " (it runs with their current values; secrets keep no history)",
          );
        }
        return 0;
      }),
    );
}
