import type { Command } from "commander";
import type { NamespaceQuotaChange, NamespaceQuotas } from "../client.ts";
import { action, client, collect } from "./args.ts";
import { UsageError } from "./output.ts";

const QUOTA_FLAGS = {
  functions: "functions",
  "bundle-bytes": "bundleBytes",
  concurrent: "concurrentInvocations",
  "per-minute": "invocationsPerMinute",
} as const;

/** `--functions 20 --bundle-bytes none`: a non-negative integer, or `none` to remove the quota. */
function quotasOf(values: Record<string, unknown>): NamespaceQuotaChange {
  const quotas: Record<string, number | null> = {};
  for (const [flag, field] of Object.entries(QUOTA_FLAGS)) {
    const raw = values[camelCase(flag)];
    if (raw === undefined) continue;
    if (raw === "none") quotas[field] = null;
    else if (typeof raw === "string" && /^\d+$/.test(raw)) quotas[field] = Number(raw);
    else throw new UsageError(`--${flag} must be a non-negative integer or none, got ${JSON.stringify(raw)}`);
  }
  return quotas;
}

export function registerAccessCommands(program: Command): void {
  const tokens = program
    .command("tokens")
    .description("Create, list and revoke API tokens (admin): scopes admin, read, read:<ns>, deploy:<ns>, invoke:<ns>");
  tokens
    .command("create")
    .description("Create a token; it is shown once")
    .requiredOption("--name <name>", "what the token is for, e.g. ci")
    .requiredOption("--scope <scope>", "admin, read, read:<ns>, deploy:<ns> or invoke:<ns> (repeatable)", collect)
    .addHelpText("after", "\nExample:\n  hearth tokens create --name ci --scope deploy:team-a")
    .action(
      action<{ name: string; scope: string[] }, []>(async ({ opts, out }) => {
        const created = await client().createToken(opts.name, opts.scope);
        out.result(created);
        out.info(`✔ Token ${created.id} (${created.name}): ${created.scopes.join(", ")}`);
        out.info("  Store it now; it is not shown again:");
        out.info(created.token); // alone on its line: `token=$(hearth tokens create ... | tail -1)`
        return 0;
      }),
    );
  tokens
    .command("ls")
    .description("List tokens (ids, names, scopes; never the secret)")
    .action(
      action(async ({ out }) => {
        const list = await client().tokens();
        out.result({ tokens: list });
        if (list.length === 0) out.info("No tokens besides the operator's HEARTH_TOKEN.");
        for (const t of list) out.info(`${t.id}  ${t.name.padEnd(20)} ${t.createdAt}  ${t.scopes.join(", ")}`);
        return 0;
      }),
    );
  tokens
    .command("revoke")
    .description("Revoke a token at once, on every gateway")
    .argument("<id>", "the token's id (see `hearth tokens ls`)")
    .action(
      action(async ({ out }, id: string) => {
        await client().revokeToken(id);
        out.result({ revoked: id });
        out.info(`✔ Revoked token ${id}`);
        return 0;
      }),
    );

  const namespaces = program
    .command("namespaces")
    .description("Manage namespaces and their quotas (admin); `none` removes a quota");
  for (const verb of ["create", "set"] as const) {
    const command = namespaces
      .command(verb)
      .description(verb === "create" ? "Create a namespace with quotas" : "Change a namespace's quotas")
      .argument("<ns>", "the namespace's name");
    for (const [flag, field] of Object.entries(QUOTA_FLAGS)) command.option(`--${flag} <n|none>`, `quota on ${field}`);
    command.action(
      action(async ({ opts, out }, name: string) => {
        const quotas = quotasOf(opts as Record<string, unknown>);
        const ns =
          verb === "create" ? await client().createNamespace(name, quotas) : await client().setNamespace(name, quotas);
        out.result(ns);
        out.info(`✔ Namespace ${ns.name}: ${describeQuotas(ns.quotas)}`);
        return 0;
      }),
    );
  }
  namespaces
    .command("ls")
    .description("List namespaces with their usage and quotas")
    .action(
      action(async ({ out }) => {
        const list = await client().namespaces();
        out.result({ namespaces: list });
        for (const ns of list) {
          out.info(
            `${ns.name.padEnd(24)} ${String(ns.usage.functions).padStart(4)} functions ${String(ns.usage.bundleBytes).padStart(10)} bytes  quotas: ${describeQuotas(ns.quotas)}`,
          );
        }
        return 0;
      }),
    );
  namespaces
    .command("rm")
    .description("Remove an empty namespace")
    .argument("<ns>", "the namespace's name")
    .action(
      action(async ({ out }, name: string) => {
        await client().removeNamespace(name);
        out.result({ deleted: name });
        out.info(`✔ Removed namespace ${name}`);
        return 0;
      }),
    );
}

/** Commander's name for a flag's value: `bundle-bytes` → `bundleBytes`. */
function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function describeQuotas(quotas: NamespaceQuotas): string {
  const set = Object.entries(quotas).filter(([, v]) => v !== undefined);
  return set.length === 0 ? "none" : set.map(([k, v]) => `${k} ${v}`).join(", ");
}
