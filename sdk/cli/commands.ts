import type { Command } from "commander";
import { registerAccessCommands } from "./access-commands.ts";
import { action, client, int } from "./args.ts";
import { registerBackupCommands } from "./backup-commands.ts";
import { registerDeployCommand } from "./deploy-command.ts";
import { registerDevCommands } from "./dev-commands.ts";
import { registerInitCommand } from "./init-command.ts";
import { registerInvokeCommands } from "./invoke-commands.ts";
import { registerLogsCommand } from "./logs-commands.ts";
import { UsageError } from "./output.ts";
import { registerSecretsCommands } from "./secrets-commands.ts";
import { registerVersionsCommands } from "./versions-commands.ts";

/** Every command, in the order `hearth --help` lists them. */
export function registerCommands(program: Command): void {
  registerInitCommand(program);
  registerDeployCommand(program);
  registerInvokeCommands(program);
  registerLogsCommand(program);
  registerFunctionCommands(program);
  registerVersionsCommands(program);
  registerSecretsCommands(program);
  registerTriggerCommands(program);
  registerDeadLetterCommands(program);
  registerClusterCommands(program);
  registerAccessCommands(program);
  registerBackupCommands(program);
  registerDevCommands(program);
}

function registerFunctionCommands(program: Command): void {
  program
    .command("ls")
    .description("List deployed functions")
    .action(
      action(async ({ out }) => {
        const functions = await client().list();
        out.result(functions);
        if (functions.length === 0)
          out.info("No functions deployed. Deploy one with `hearth deploy <entry> --name <fn>`.");
        for (const f of functions)
          out.info(
            `${f.name.padEnd(24)} ${f.digest.slice(0, 12)}  ${f.memoryMb} MB  ${f.cpuMs} ms CPU  ${f.timeoutMs} ms wall  ${f.url}`,
          );
        return 0;
      }),
    );

  program
    .command("rm")
    .description("Remove a function (its versions, secrets and logs go with it)")
    .argument("<fn>", "the function's name")
    .action(
      action(async ({ out }, name: string) => {
        await client().remove(name);
        out.result({ deleted: name });
        out.info(`✔ Removed ${name}`);
        return 0;
      }),
    );
}

function registerTriggerCommands(program: Command): void {
  const triggers = program
    .command("triggers")
    .description("Run a function on events: nats://, jetstream://, amqp://, mqtt:// sources, or a cron schedule (UTC)");
  triggers
    .command("add")
    .description("Start feeding a function from a source or a schedule")
    .argument("<fn>", "the function's name")
    .option("-s, --source <url>", "nats://subject, jetstream://stream/consumer, amqp://…/queue or mqtt://…/topic")
    .option("-c, --cron <expr>", 'a cron expression in UTC, e.g. "*/5 * * * *"')
    .option("--batch-size <1-100>", "messages per call", int())
    .option("--batch-wait <ms>", "how long to wait for a batch to fill", int(0))
    .option("--max-concurrency <n>", "batches in flight", int())
    .option("--retries <n>", "retries before a message goes to the dead-letter queue", int(0))
    .addHelpText(
      "after",
      '\nExamples:\n  hearth triggers add orders --source nats://orders.created\n  hearth triggers add report --cron "0 6 * * *"',
    )
    .action(
      action(async ({ opts, out }, fn: string) => {
        const o = opts as TriggerAddFlags;
        if ((o.source === undefined) === (o.cron === undefined))
          throw new UsageError('give exactly one of --source <url> and --cron "<expr>"');
        const trigger = await client().addTrigger(fn, {
          source: o.source,
          cron: o.cron,
          batchSize: o.batchSize,
          batchWaitMs: o.batchWait,
          maxConcurrency: o.maxConcurrency,
          retries: o.retries,
        });
        out.result(trigger);
        out.info(`✔ Trigger ${trigger.id}: ${trigger.source} → ${trigger.function}`);
        return 0;
      }),
    );
  triggers
    .command("ls")
    .description("List triggers, of one function or all")
    .argument("[fn]", "only this function's")
    .action(
      action(async ({ out }, fn: string | undefined) => {
        const list = await client().triggers(fn);
        out.result({ triggers: list });
        if (list.length === 0) out.info(`No triggers${fn ? ` for ${fn}` : ""}.`);
        for (const t of list)
          out.info(`${t.id}  ${t.function.padEnd(20)} ${t.source}  batch ${t.batchSize}, ${t.retries} retries`);
        return 0;
      }),
    );
  triggers
    .command("rm")
    .description("Remove a trigger")
    .argument("<id>", "the trigger's id (see `hearth triggers ls`)")
    .action(
      action(async ({ out }, id: string) => {
        await client().removeTrigger(id);
        out.result({ deleted: id });
        out.info(`✔ Removed trigger ${id}`);
        return 0;
      }),
    );
}

interface TriggerAddFlags {
  source?: string;
  cron?: string;
  batchSize?: number;
  batchWait?: number;
  maxConcurrency?: number;
  retries?: number;
}

function registerDeadLetterCommands(program: Command): void {
  const dlq = program.command("dlq").description("Dead letters: async invocations and events that failed for good");
  dlq
    .command("ls")
    .description("List dead letters, oldest first")
    .argument("[fn]", "only this function's")
    .option("--limit <n>", "at most this many", int())
    .option("--after <seq>", "those after this sequence number (paging)", int(0))
    .action(
      action(async ({ opts, out }, fn: string | undefined) => {
        const { limit, after } = opts as { limit?: number; after?: number };
        const page = await client().deadLetters(fn, { limit, after });
        out.result(page);
        if (page.deadLetters.length === 0) out.info(`No dead letters${fn ? ` for ${fn}` : ""}.`);
        for (const d of page.deadLetters) {
          const what = d.id ?? (d.trigger ? `trigger ${d.trigger}` : "");
          out.info(
            `${String(d.seq).padStart(7)}  ${d.time}  ${d.function.padEnd(20)} ${what.padEnd(22)} ${d.attempts} attempt(s)  ${d.error.code}: ${d.error.message}`,
          );
        }
        if (page.next !== undefined) out.info(`More: hearth dlq ls ${fn ? `${fn} ` : ""}--after ${page.next}`);
        return 0;
      }),
    );
  dlq
    .command("replay")
    .description("Put a function's dead letters back in line (all, or those named with --seq)")
    .argument("<fn>", "the function's name")
    .option("--seq <n>", "a dead letter's sequence number (repeatable)", (v, prev: number[] | undefined) => [
      ...(prev ?? []),
      int()(v),
    ])
    .action(
      action(async ({ opts, out }, name: string) => {
        const replayed = await client().replayDeadLetters(name, (opts as { seq?: number[] }).seq);
        out.result({ replayed });
        out.info(`✔ Replayed ${replayed} dead letter${replayed === 1 ? "" : "s"} of ${name}`);
        return 0;
      }),
    );
}

function registerClusterCommands(program: Command): void {
  program
    .command("status")
    .description("Show nodes, executors, functions with desired and actual capacity, and recent scaling decisions")
    .action(
      action(async ({ out }) => {
        const s = await client().status();
        out.result(s);
        out.info(s.leader ? `Scheduler leader: ${s.leader.id} (epoch ${s.leader.epoch})` : "No scheduler leader");
        out.info(`\nNodes (${s.nodes.length}):`);
        for (const n of s.nodes) {
          const executors = n.executors.map((e) => `${e.id} [${e.functions.join(", ") || "idle"}]`).join("; ");
          out.info(`  ${n.id.padEnd(14)} ${n.state.padEnd(9)} pid ${String(n.pid).padEnd(7)} ${executors}`);
        }
        out.info(`\nFunctions (${s.functions.length}):`);
        out.info(`  ${"name".padEnd(24)} desired actual warm in-flight queued  nodes`);
        for (const f of s.functions) {
          const cells = [f.desired, f.actual, f.warm, f.inFlight, f.queued].map((v, i) =>
            String(v).padStart([7, 6, 4, 9, 6][i] ?? 6),
          );
          out.info(`  ${f.name.padEnd(24)} ${cells.join(" ")}  ${f.nodes.join(",")}${f.panic ? "  (panic)" : ""}`);
        }
        const recent = s.decisions.slice(-5);
        if (recent.length > 0) out.info("\nRecent decisions:");
        for (const d of recent)
          out.info(`  ${new Date(d.at).toISOString()} ${d.fn}: ${d.actual} → ${d.desired} (${d.reason})`);
        return 0;
      }),
    );

  program
    .command("nodes")
    .description("Manage worker nodes")
    .command("drain")
    .description("Drain a worker node: it takes no new pools and its pools move elsewhere before it can stop")
    .argument("<node-id>", "the node (see `hearth status`)")
    .action(
      action(async ({ out }, node: string) => {
        await client().drainNode(node);
        out.result({ node, state: "draining" });
        out.info(`✔ Draining ${node}: its pools move to other nodes; \`hearth status\` shows when it holds none.`);
        return 0;
      }),
    );
}
