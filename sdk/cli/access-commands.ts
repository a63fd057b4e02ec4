import type { NamespaceQuotaChange, NamespaceQuotas } from "../client.ts";
import { client, parse } from "./args.ts";
import type { Command } from "./commands.ts";
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
    const raw = values[flag];
    if (raw === undefined) continue;
    if (raw === "none") quotas[field] = null;
    else if (typeof raw === "string" && /^\d+$/.test(raw)) quotas[field] = Number(raw);
    else throw new UsageError(`--${flag} must be a non-negative integer or none, got ${JSON.stringify(raw)}`);
  }
  return quotas;
}

const tokens: Command = {
  usage:
    "hearth tokens create --name <name> --scope <scope>... [--json] | hearth tokens ls [--json] | hearth tokens revoke <id> [--json]",
  summary: "Create, list and revoke API tokens (admin): scopes admin, read, read:<ns>, deploy:<ns>, invoke:<ns>",
  async run(args, out) {
    const { values, positionals } = parse(args, {
      name: { type: "string" },
      scope: { type: "string", multiple: true },
    });
    const [subcommand, id] = positionals;
    if (subcommand === "create") {
      if (!values.name) throw new UsageError("missing --name <name>");
      const scopes = values.scope ?? [];
      if (scopes.length === 0) throw new UsageError("give at least one --scope, e.g. --scope deploy:team-a");
      const created = await client().createToken(values.name, scopes);
      out.result(created);
      out.info(`✔ Token ${created.id} (${created.name}): ${created.scopes.join(", ")}`);
      out.info("  Store it now; it is not shown again:");
      out.info(created.token); // alone on its line: `token=$(hearth tokens create ... | tail -1)`
      return 0;
    }
    if (values.name || values.scope) throw new UsageError("--name and --scope are for `hearth tokens create`");
    if (subcommand === "ls") {
      const list = await client().tokens();
      out.result({ tokens: list });
      if (list.length === 0) out.info("No tokens besides the operator's HEARTH_TOKEN.");
      for (const t of list) out.info(`${t.id}  ${t.name.padEnd(20)} ${t.createdAt}  ${t.scopes.join(", ")}`);
      return 0;
    }
    if (subcommand === "revoke") {
      if (!id) throw new UsageError("missing <id> (see `hearth tokens ls`)");
      await client().revokeToken(id);
      out.result({ revoked: id });
      out.info(`✔ Revoked token ${id}`);
      return 0;
    }
    throw new UsageError("the tokens subcommands are `create`, `ls` and `revoke <id>`");
  },
};

const quotaOptions = {
  functions: { type: "string" },
  "bundle-bytes": { type: "string" },
  concurrent: { type: "string" },
  "per-minute": { type: "string" },
} as const;

const namespaces: Command = {
  usage:
    "hearth namespaces create|set <ns> [--functions <n>] [--bundle-bytes <n>] [--concurrent <n>] [--per-minute <n>] [--json] | hearth namespaces ls [--json] | hearth namespaces rm <ns> [--json]",
  summary: "Manage namespaces and their quotas (admin); `none` removes a quota",
  async run(args, out) {
    const { values, positionals } = parse(args, quotaOptions);
    const [subcommand, name] = positionals;
    const quotas = quotasOf(values);
    if (subcommand === "create" || subcommand === "set") {
      if (!name) throw new UsageError(`missing <ns>: hearth namespaces ${subcommand} <ns>`);
      const ns =
        subcommand === "create"
          ? await client().createNamespace(name, quotas)
          : await client().setNamespace(name, quotas);
      out.result(ns);
      out.info(`✔ Namespace ${ns.name}: ${describeQuotas(ns.quotas)}`);
      return 0;
    }
    if (Object.keys(quotas).length > 0) throw new UsageError("quota flags are for `create` and `set`");
    if (subcommand === "ls") {
      const list = await client().namespaces();
      out.result({ namespaces: list });
      for (const ns of list) {
        out.info(
          `${ns.name.padEnd(24)} ${String(ns.usage.functions).padStart(4)} functions ${String(ns.usage.bundleBytes).padStart(10)} bytes  quotas: ${describeQuotas(ns.quotas)}`,
        );
      }
      return 0;
    }
    if (subcommand === "rm") {
      if (!name) throw new UsageError("missing <ns>: hearth namespaces rm <ns>");
      await client().removeNamespace(name);
      out.result({ deleted: name });
      out.info(`✔ Removed namespace ${name}`);
      return 0;
    }
    throw new UsageError("the namespaces subcommands are `create <ns>`, `set <ns>`, `ls` and `rm <ns>`");
  },
};

function describeQuotas(quotas: NamespaceQuotas): string {
  const set = Object.entries(quotas).filter(([, v]) => v !== undefined);
  return set.length === 0 ? "none" : set.map(([k, v]) => `${k} ${v}`).join(", ");
}

/** `hearth tokens ...` and `hearth namespaces ...`. */
export const ACCESS_COMMANDS: Readonly<Record<string, Command>> = { tokens, namespaces };
