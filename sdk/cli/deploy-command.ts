import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, resolve } from "node:path";
import { parseEnv } from "node:util";
import { type Command, InvalidArgumentError, Option } from "commander";
import { buildBundle } from "../bundle.ts";
import type { DeployedFunction, DeployOptions, HearthClient } from "../client.ts";
import { findProjectFile, loadProject, type ProjectFunction } from "../project.ts";
import { parseRateLimit } from "../rate-limit-spec.ts";
import { action, client, collect, int } from "./args.ts";
import { formatBytes, type Output, UsageError } from "./output.ts";
import { describeDeploy } from "./versions-commands.ts";
import { watchProject } from "./watch.ts";

/** Flags `hearth deploy` takes; each overrides what hearth.toml says for the functions deployed. */
export interface DeployFlags {
  name?: string;
  config?: string;
  message?: string;
  percent?: number;
  memory?: number;
  timeout?: number;
  cpu?: number;
  concurrency?: number;
  minInstances?: number;
  maxInstances?: number;
  maxBody?: number;
  retries?: number;
  maxEventAge?: number;
  rateLimit?: { requests: number; periodSeconds: number } | null;
  env?: string[];
  envFrom?: string;
  namespace?: string;
  private?: boolean;
  public?: boolean;
  watch?: boolean;
}

const SOURCE_EXTENSIONS = new Set([".ts", ".mts", ".js", ".mjs", ".tsx", ".jsx"]);
/** A progress line for uploads from this size up (below it, the upload is over before a spinner would show). */
const PROGRESS_FROM_BYTES = 512 * 1024;

export function registerDeployCommand(program: Command): void {
  program
    .command("deploy")
    .description(
      "Bundle functions with esbuild and deploy them: those hearth.toml declares (all, or the one named), or one entry file with --name",
    )
    .argument("[target]", "an entry file (with --name), or a function declared in hearth.toml; none: all of them")
    .option("-n, --name <fn>", "the function's name (with an entry file)")
    .option("-c, --config <file>", "the project file (default: the nearest hearth.toml)")
    .option("-m, --message <text>", "kept with the version this deploy makes")
    .option("--percent <1-100>", "serve the new version to this share of requests (a canary)", int())
    .option("--memory <MB>", "isolate heap limit", int())
    .option("--timeout <ms>", "wall-clock limit per invocation", int())
    .option("--cpu <ms>", "CPU limit per invocation", int())
    .option("--concurrency <n>", "invocations one isolate serves at once", int())
    .option("--min-instances <n>", "isolates kept warm when idle", int(0))
    .option("--max-instances <n>", "most isolates over the cluster", int())
    .option("--max-body <bytes>", "request and response body limit", int())
    .option("--retries <n>", "retries of async invocations", int(0))
    .option("--max-event-age <s>", "how long an async invocation may wait", int())
    .addOption(
      new Option(
        "--rate-limit <n/period>",
        "invocations per s, 10s or min over all gateways; off removes it",
      ).argParser(rateLimitArg),
    )
    .option("-e, --env <KEY=VALUE>", "a plain variable (repeatable; replaces the function's set)", collect)
    // Not --env-file: Node.js reads that flag itself wherever it appears, and exits 9 when the file is
    // missing, before the CLI runs (https://github.com/nodejs/node/issues/54232).
    .option("--env-from <path>", "plain variables from a dotenv file (KEY=VALUE lines); --env wins over it")
    .option("--namespace <ns>", "the namespace that owns the function")
    .addOption(new Option("--private", "invoking needs a token").conflicts("public"))
    .option("--public", "anyone may invoke (the default)")
    .option("-w, --watch", "stay running and redeploy when a source file or hearth.toml changes")
    .addHelpText(
      "after",
      "\nExamples:\n  hearth deploy                         # every function in hearth.toml\n  hearth deploy api --memory 256        # one of them, with a setting overridden\n  hearth deploy ./hello.ts --name hello # no project file needed\n  hearth deploy --watch                 # redeploy on every save",
    )
    .action(
      action<DeployFlags, [string | undefined]>(async ({ opts, out }, target) => {
        const functions = selectFunctions(target, opts);
        const hearth = client();
        // Watching, each function's last deployed bundle is kept, so a save that changes nothing it imports uploads nothing.
        const lastCode = opts.watch ? new Map<string, string>() : undefined;
        let failed = 0;
        for (const fn of functions) {
          try {
            await deployFunction(hearth, fn, opts, out, lastCode);
          } catch (err) {
            // With several functions, one failure does not stop the others; each says what went wrong.
            if (functions.length === 1 && !opts.watch) throw err;
            out.error(err);
            failed++;
          }
        }
        if (!opts.watch) return failed > 0 ? 1 : 0;
        return watchProject({
          functions,
          projectFile: target !== undefined && isEntryFile(target) ? null : projectFileOf(opts),
          reload: () => selectFunctions(target, opts),
          deploy: (fn) => deployFunction(hearth, fn, opts, out, lastCode),
          lastCode: lastCode ?? new Map(),
          out,
        });
      }),
    );
}

function rateLimitArg(value: string) {
  try {
    return parseRateLimit(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** An entry file: named like a source file, or an existing file (a folder or a function's name is not). */
function isEntryFile(target: string): boolean {
  if (SOURCE_EXTENSIONS.has(extname(target))) return true;
  return statSync(target, { throwIfNoEntry: false })?.isFile() === true && !target.endsWith(".toml");
}

/** The project file `--config` names (absolute), else the nearest hearth.toml. */
export function projectFileOf(opts: { readonly config?: string }): string | null {
  return opts.config ? resolve(opts.config) : findProjectFile();
}

/** What to deploy: the entry file named, or hearth.toml's functions (all, or the one named). */
export function selectFunctions(target: string | undefined, opts: DeployFlags): ProjectFunction[] {
  if (target !== undefined && isEntryFile(target)) {
    if (!opts.name) throw new UsageError("missing --name <fn>: the name to deploy this entry file as");
    if (!existsSync(target)) throw new UsageError(`the entry file ${target} does not exist`);
    return [{ name: opts.name, entry: resolve(target), settings: {}, triggers: [] }];
  }
  const file = projectFileOf(opts);
  if (!file) {
    throw new UsageError(
      target === undefined
        ? "nothing to deploy: no hearth.toml here or above. Give an entry file (hearth deploy ./index.ts --name <fn>) or create a project with `hearth init`"
        : `${target} is neither a file nor a function of a hearth.toml (none found here or above)`,
    );
  }
  if (opts.name) throw new UsageError("--name is for an entry file; hearth.toml names its functions");
  const project = loadProject(file);
  if (target === undefined) return [...project.functions];
  const fn = project.functions.find((f) => f.name === target);
  if (!fn) {
    const names = project.functions.map((f) => f.name).join(", ");
    throw new UsageError(`${file} declares no function ${target} (it declares ${names})`);
  }
  return [fn];
}

/** The flags given, as deploy settings; they win over the project file's. */
function overridesOf(opts: DeployFlags): Partial<DeployOptions> {
  const asyncPolicy =
    opts.retries !== undefined || opts.maxEventAge !== undefined
      ? { async: { retries: opts.retries, maxEventAgeS: opts.maxEventAge } }
      : {};
  const defined = Object.entries({
    memoryMb: opts.memory,
    timeoutMs: opts.timeout,
    cpuMs: opts.cpu,
    concurrency: opts.concurrency,
    maxBodyBytes: opts.maxBody,
    minInstances: opts.minInstances,
    maxInstances: opts.maxInstances,
    rateLimit: opts.rateLimit,
    namespace: opts.namespace,
    message: opts.message,
    percent: opts.percent,
    env: opts.env || opts.envFrom ? { ...readEnvFile(opts.envFrom), ...parseEnvPairs(opts.env ?? []) } : undefined,
    access: opts.private ? "private" : opts.public ? "public" : undefined,
  }).filter(([, v]) => v !== undefined);
  return { ...Object.fromEntries(defined), ...asyncPolicy };
}

/** A dotenv file's variables, parsed by Node's own parser (the format of `node --env-file`). */
function readEnvFile(path: string | undefined): Record<string, string> {
  if (path === undefined) return {};
  try {
    return parseEnv(readFileSync(path, "utf8")) as Record<string, string>;
  } catch (err) {
    throw new UsageError(`--env-from ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
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

/**
 * Bundles, uploads and reports one function, then adds the triggers hearth.toml declares that it
 * does not have yet (the others are listed, not removed: they may have been added on purpose).
 * Given `lastCode` (watch mode), a bundle equal to the one last deployed (code and source map: a
 * save that only moves lines changes the map alone) is not uploaded again.
 */
export async function deployFunction(
  hearth: HearthClient,
  fn: ProjectFunction,
  opts: DeployFlags,
  out: Output,
  lastCode?: Map<string, string>,
): Promise<DeployedFunction | null> {
  const progress = out.progress(`Bundling ${fn.name}…`);
  try {
    const bundleStart = performance.now();
    const bundle = await buildBundle(fn.entry);
    const bundleMs = performance.now() - bundleStart;
    const deployed = `${bundle.code}\0${bundle.sourceMap}`;
    if (lastCode?.get(fn.name) === deployed) return null;
    const bytes = Buffer.byteLength(bundle.code);
    progress.update(`Uploading ${fn.name} (${formatBytes(bytes)})…`);
    const uploadStart = performance.now();
    const onUpload =
      bytes >= PROGRESS_FROM_BYTES
        ? (sent: number, total: number) =>
            progress.update(`Uploading ${fn.name}: ${formatBytes(sent)} of ${formatBytes(total)}`)
        : undefined;
    const info = await hearth.deploy(
      fn.name,
      { ...fn.settings, ...overridesOf(opts), ...bundle } as DeployOptions,
      onUpload,
    );
    const uploadMs = performance.now() - uploadStart;
    progress.stop();
    out.result({ ...info, bundleMs: Math.round(bundleMs), uploadMs: Math.round(uploadMs) });
    for (const line of describeDeploy(info)) out.info(line);
    out.info(
      `  bundled in ${Math.round(bundleMs)} ms, uploaded in ${Math.round(uploadMs)} ms · ${describeLimits(info)}`,
    );
    lastCode?.set(fn.name, deployed);
    await addDeclaredTriggers(hearth, fn, out);
    return info;
  } finally {
    progress.stop();
  }
}

async function addDeclaredTriggers(hearth: HearthClient, fn: ProjectFunction, out: Output): Promise<void> {
  if (fn.triggers.length === 0) return;
  const existing = await hearth.triggers(fn.name);
  const have = new Set(existing.map((t) => triggerKey(t.source)));
  for (const trigger of fn.triggers) {
    if (have.has(triggerKey(trigger.source ?? `cron(${trigger.cron})`))) continue;
    const added = await hearth.addTrigger(fn.name, trigger);
    out.info(`  ✔ trigger ${added.id}: ${added.source}`);
  }
  const declared = new Set(fn.triggers.map((t) => triggerKey(t.source ?? `cron(${t.cron})`)));
  for (const t of existing) {
    if (!declared.has(triggerKey(t.source)))
      out.info(`  ⚠ trigger ${t.id} (${t.source}) is not in hearth.toml; \`hearth triggers rm ${t.id}\` removes it`);
  }
}

/** A trigger's source without credentials (the API masks passwords), so a declared one matches the listed one. */
function triggerKey(source: string): string {
  if (source.startsWith("cron(")) return source.replace(/\s+/g, " ");
  try {
    const url = new URL(source);
    url.username = "";
    url.password = "";
    return url.href;
  } catch {
    return source;
  }
}

function describeLimits(info: DeployedFunction): string {
  const seconds = info.timeoutMs >= 1000 ? `${info.timeoutMs / 1000} s` : `${info.timeoutMs} ms`;
  return `limits: ${info.memoryMb} MB, ${info.cpuMs} ms CPU, ${seconds} wall, ${info.concurrency} concurrent, ${formatBytes(info.maxBodyBytes)} bodies`;
}
