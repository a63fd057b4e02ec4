import { readFileSync } from "node:fs";
import { buildBundle } from "../bundle.ts";
import { resolveClientConfig } from "../config.ts";
import { startLocalCluster } from "../dev/cluster.ts";
import { ACCESS_COMMANDS } from "./access-commands.ts";
import { client, intFlag, optionalInt, parse, positional } from "./args.ts";
import { BACKUP_COMMANDS } from "./backup-commands.ts";
import { logs } from "./logs-commands.ts";
import { type Output, UsageError } from "./output.ts";
import { parseRateLimitFlag } from "./rate-limit-flag.ts";
import { secrets } from "./secrets-commands.ts";
import { describeDeploy, rollback, rollout, versions } from "./versions-commands.ts";

/** A CLI command: parses its own arguments, prints through `out`, returns the exit code. */
export interface Command {
  readonly usage: string;
  readonly summary: string;
  run(args: string[], out: Output): Promise<number>;
}

function parseEnvPairs(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env expects KEY=VALUE, got ${JSON.stringify(pair)}`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

const deploy: Command = {
  usage:
    "hearth deploy <entry> --name <fn> [-m <message>] [--percent <1-100>] [--memory <MB>] [--timeout <ms>] [--cpu <ms>] [--concurrency <n>] [--min-instances <n>] [--max-instances <n>] [--max-body <bytes>] [--retries <n>] [--max-event-age <s>] [--rate-limit <n>/<s|10s|min>|off] [--env K=V]... [--namespace <ns>] [--private | --public] [--json]",
  summary: "Bundle a function with esbuild and deploy it",
  async run(args, out) {
    const { values, positionals } = parse(args, {
      name: { type: "string" },
      memory: { type: "string" },
      timeout: { type: "string" },
      cpu: { type: "string" },
      concurrency: { type: "string" },
      "min-instances": { type: "string" },
      "max-instances": { type: "string" },
      "max-body": { type: "string" },
      retries: { type: "string" },
      "max-event-age": { type: "string" },
      "rate-limit": { type: "string" },
      env: { type: "string", multiple: true },
      message: { type: "string", short: "m" },
      percent: { type: "string" },
      namespace: { type: "string" },
      private: { type: "boolean" },
      public: { type: "boolean" },
    });
    const entry = positional(positionals, "<entry> file");
    if (!values.name) throw new UsageError("missing --name <fn>");
    if (values.private && values.public) throw new UsageError("give one of --private and --public");
    // Bounds are the gateway's to check (ASYNC_POLICY_BOUNDS); its message names the field.
    const retries = optionalInt(values.retries, "--retries", 0);
    const maxEventAgeS = optionalInt(values["max-event-age"], "--max-event-age");
    const bundle = await buildBundle(entry);
    const info = await client().deploy(values.name, {
      code: bundle.code,
      filename: bundle.filename,
      // Left out unless named: a redeploy keeps the variables it was not told to change.
      ...(values.env ? { env: parseEnvPairs(values.env) } : {}),
      ...(values.message ? { message: values.message } : {}),
      percent: optionalInt(values.percent, "--percent"),
      memoryMb: optionalInt(values.memory, "--memory"),
      timeoutMs: optionalInt(values.timeout, "--timeout"),
      cpuMs: optionalInt(values.cpu, "--cpu"),
      concurrency: optionalInt(values.concurrency, "--concurrency"),
      maxBodyBytes: optionalInt(values["max-body"], "--max-body"),
      minInstances: optionalInt(values["min-instances"], "--min-instances", 0),
      maxInstances: optionalInt(values["max-instances"], "--max-instances"),
      ...(retries !== undefined || maxEventAgeS !== undefined ? { async: { retries, maxEventAgeS } } : {}),
      ...(values["rate-limit"] !== undefined ? { rateLimit: parseRateLimitFlag(values["rate-limit"]) } : {}),
      ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
      ...(values.private || values.public ? { access: values.private ? "private" : "public" } : {}),
    });
    out.result(info);
    for (const line of describeDeploy(info)) out.info(line);
    return 0;
  },
};

const invoke: Command = {
  usage:
    "hearth invoke <fn> [--data <body> | --data-file <path>] [--method <M>] [--path </p?q>] [--header K:V]... [--async [--idempotency-key <key>] [--callback <url>]] [--auth] [--json]",
  summary: "Call a function over HTTP and print its response body (with --async: queue it and print its id)",
  async run(args, out) {
    const { values, positionals } = parse(args, {
      data: { type: "string" },
      "data-file": { type: "string" },
      method: { type: "string" },
      path: { type: "string" },
      header: { type: "string", multiple: true },
      async: { type: "boolean" },
      "idempotency-key": { type: "string" },
      callback: { type: "string" },
      auth: { type: "boolean" },
    });
    const name = positional(positionals, "<fn>");
    const body = values["data-file"] ? readFileSync(values["data-file"]) : values.data;
    const headers: Record<string, string> = {};
    for (const h of values.header ?? []) {
      const colon = h.indexOf(":");
      if (colon <= 0) throw new UsageError(`--header expects Name:Value, got ${JSON.stringify(h)}`);
      headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
    }
    // --auth: a private function needs the token (HEARTH_TOKEN or the saved one); Hearth strips it before the function.
    const token = values.auth ? resolveClientConfig().token : undefined;
    const request = { body, method: values.method, path: values.path, headers, ...(token ? { token } : {}) };
    if (values.async) {
      const accepted = await client().invokeAsync(name, {
        ...request,
        idempotencyKey: values["idempotency-key"],
        callbackUrl: values.callback,
      });
      out.result(accepted);
      out.info(accepted.id); // alone on its line: `id=$(hearth invoke f --async)`
      return 0;
    }
    if (values["idempotency-key"] !== undefined || values.callback !== undefined) {
      throw new UsageError("--idempotency-key and --callback apply to --async invocations only");
    }
    const res = await client().invoke(name, request);
    if (out.json) out.result({ status: res.status, headers: res.headers, body: res.text() });
    else out.raw(res.body);
    return res.status >= 400 ? 1 : 0;
  },
};

const invocation: Command = {
  usage: "hearth invocation <id> [--json]",
  summary: "Show an async invocation: its state, attempts, timestamps and, once finished, its response",
  async run(args, out) {
    const { positionals } = parse(args, {});
    const inv = await client().invocation(positional(positionals, "<id>"));
    out.result(inv);
    if (out.json) return 0;
    const line = (label: string, value: string | undefined) => {
      if (value !== undefined) out.info(`  ${label.padEnd(10)} ${value}`);
    };
    out.info(`${inv.id}  ${inv.function}  ${inv.state}  (${inv.attempts} attempt${inv.attempts === 1 ? "" : "s"})`);
    line("accepted", inv.acceptedAt);
    line("started", inv.startedAt);
    line("finished", inv.finishedAt);
    line("retry at", inv.retryAt);
    line("error", inv.error && `${inv.error.code}: ${inv.error.message}`);
    if (inv.deadLettered) line("dead", `in the dead-letter queue; \`hearth dlq replay ${inv.function}\` runs it again`);
    if (inv.callback) {
      const { url, state, attempts, lastError } = inv.callback;
      line("callback", `${url} ${state} after ${attempts} attempt(s)${lastError ? `: ${lastError}` : ""}`);
    }
    const response = inv.response;
    if (!response) return 0;
    line(
      "response",
      `HTTP ${response.status}, ${response.bodyBytes} bytes${"bodyExpired" in response ? " (body expired)" : ""}`,
    );
    for (const [name, value] of response.headers) out.info(`    ${name}: ${value}`);
    if ("body" in response) {
      const body = Buffer.from(response.body, "base64");
      out.raw(body);
      if (body.byteLength > 0 && body[body.byteLength - 1] !== 0x0a) out.info(""); // end the line for the shell
    }
    return 0;
  },
};

const dlq: Command = {
  usage: "hearth dlq ls [<fn>] [--limit <n>] [--after <seq>] [--json] | hearth dlq replay <fn> [--seq <n>]... [--json]",
  summary: "List dead letters (async invocations and events that failed for good), or put them back in line",
  async run(args, out) {
    const { values, positionals } = parse(args, {
      limit: { type: "string" },
      after: { type: "string" },
      seq: { type: "string", multiple: true },
    });
    const [subcommand, fn] = positionals;
    if (subcommand === "ls") {
      if (values.seq) throw new UsageError("--seq is for `hearth dlq replay`");
      const page = await client().deadLetters(fn, {
        limit: optionalInt(values.limit, "--limit"),
        after: optionalInt(values.after, "--after", 0),
      });
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
    }
    if (subcommand === "replay") {
      if (values.limit || values.after) throw new UsageError("--limit and --after are for `hearth dlq ls`");
      const name = positional(positionals.slice(1), "<fn>");
      const seqs = values.seq?.map((seq) => intFlag(seq, "--seq"));
      const replayed = await client().replayDeadLetters(name, seqs);
      out.result({ replayed });
      out.info(`✔ Replayed ${replayed} dead letter${replayed === 1 ? "" : "s"} of ${name}`);
      return 0;
    }
    throw new UsageError("the dlq subcommands are `ls [<fn>]` and `replay <fn>`");
  },
};

const triggers: Command = {
  usage:
    'hearth triggers add <fn> (--source <url> | --cron "<expr>") [--batch-size <1-100>] [--batch-wait <ms>] [--max-concurrency <n>] [--retries <n>] [--json] | hearth triggers ls [<fn>] [--json] | hearth triggers rm <id> [--json]',
  summary: "Run a function on events: nats://, jetstream://, amqp://, mqtt:// sources, or a cron schedule (UTC)",
  async run(args, out) {
    const { values, positionals } = parse(args, {
      source: { type: "string" },
      cron: { type: "string" },
      "batch-size": { type: "string" },
      "batch-wait": { type: "string" },
      "max-concurrency": { type: "string" },
      retries: { type: "string" },
    });
    const [subcommand, arg] = positionals;
    if (subcommand === "add") {
      const fn = positional(positionals.slice(1), "<fn>");
      if ((values.source === undefined) === (values.cron === undefined))
        throw new UsageError('give exactly one of --source <url> and --cron "<expr>"');
      const trigger = await client().addTrigger(fn, {
        source: values.source,
        cron: values.cron,
        batchSize: optionalInt(values["batch-size"], "--batch-size"),
        batchWaitMs: optionalInt(values["batch-wait"], "--batch-wait", 0),
        maxConcurrency: optionalInt(values["max-concurrency"], "--max-concurrency"),
        retries: optionalInt(values.retries, "--retries", 0),
      });
      out.result(trigger);
      out.info(`✔ Trigger ${trigger.id}: ${trigger.source} → ${trigger.function}`);
      return 0;
    }
    if (subcommand === "ls") {
      const list = await client().triggers(arg);
      out.result({ triggers: list });
      if (list.length === 0) out.info(`No triggers${arg ? ` for ${arg}` : ""}.`);
      for (const t of list)
        out.info(`${t.id}  ${t.function.padEnd(20)} ${t.source}  batch ${t.batchSize}, ${t.retries} retries`);
      return 0;
    }
    if (subcommand === "rm") {
      const id = positional(positionals.slice(1), "<id>");
      await client().removeTrigger(id);
      out.result({ deleted: id });
      out.info(`✔ Removed trigger ${id}`);
      return 0;
    }
    throw new UsageError("the triggers subcommands are `add <fn>`, `ls [<fn>]` and `rm <id>`");
  },
};

const ls: Command = {
  usage: "hearth ls [--json]",
  summary: "List deployed functions",
  async run(args, out) {
    parse(args, {});
    const functions = await client().list();
    out.result(functions);
    if (functions.length === 0) out.info("No functions deployed. Deploy one with `hearth deploy <entry> --name <fn>`.");
    for (const f of functions)
      out.info(
        `${f.name.padEnd(24)} ${f.digest.slice(0, 12)}  ${f.memoryMb} MB  ${f.cpuMs} ms CPU  ${f.timeoutMs} ms wall  ${f.url}`,
      );
    return 0;
  },
};

const rm: Command = {
  usage: "hearth rm <fn> [--json]",
  summary: "Remove a function",
  async run(args, out) {
    const { positionals } = parse(args, {});
    const name = positional(positionals, "<fn>");
    await client().remove(name);
    out.result({ deleted: name });
    out.info(`✔ Removed ${name}`);
    return 0;
  },
};

const status: Command = {
  usage: "hearth status [--json]",
  summary: "Show nodes, executors, functions with desired and actual capacity, and recent scaling decisions",
  async run(args, out) {
    parse(args, {});
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
  },
};

const nodes: Command = {
  usage: "hearth nodes drain <node-id> [--json]",
  summary: "Drain a worker node: it takes no new pools and its pools move elsewhere before it can stop",
  async run(args, out) {
    const { positionals } = parse(args, {});
    if (positionals[0] !== "drain") throw new UsageError("the only nodes subcommand is `drain <node-id>`");
    const node = positional(positionals.slice(1), "<node-id>");
    await client().drainNode(node);
    out.result({ node, state: "draining" });
    out.info(`✔ Draining ${node}: its pools move to other nodes; \`hearth status\` shows when it holds none.`);
    return 0;
  },
};

const dev: Command = {
  usage: "hearth dev",
  summary: "Run a local cluster: nats-server, gateway, scheduler and workers (Ctrl-C stops it)",
  async run(args, out) {
    parse(args, {});
    const stopped = Promise.withResolvers<void>();
    // cluster.stop() is idempotent, so a second Ctrl-C just waits for the same shutdown.
    const stop = () => cluster.stop().then(stopped.resolve, stopped.reject);
    // A dead component is restarted alone; one line per restart says which, why and when.
    const cluster = await startLocalCluster({
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
    await stopped.promise;
    return 0;
  },
};

/** Server roles: each runs one component in this process until SIGINT/SIGTERM. */
function serverCommand(role: "gateway" | "scheduler" | "worker", summary: string): Command {
  return {
    usage: `hearth ${role}`,
    summary,
    async run() {
      const modules = {
        gateway: () => import("../../gateway/index.ts"),
        scheduler: () => import("../../scheduler/index.ts"),
        worker: () => import("../../runtime/index.ts"),
      };
      await (await modules[role]()).main();
      return -1; // keeps running; the component's signal handler exits the process
    },
  };
}

export const COMMANDS: Readonly<Record<string, Command>> = {
  deploy,
  versions,
  rollout,
  rollback,
  invoke,
  invocation,
  logs,
  dlq,
  triggers,
  secrets,
  ls,
  rm,
  status,
  nodes,
  ...ACCESS_COMMANDS,
  ...BACKUP_COMMANDS,
  dev,
  gateway: serverCommand("gateway", "Run the HTTP gateway (env: NATS_URL, HEARTH_TOKEN, HEARTH_PORT)"),
  scheduler: serverCommand("scheduler", "Run the scheduler (env: NATS_URL)"),
  worker: serverCommand("worker", "Run a worker node (env: NATS_URL, HEARTH_EXECUTORS)"),
};
