import type { Command } from "commander";
import { action, client } from "./args.ts";
import { EXIT, type Output, UsageError } from "./output.ts";

/** `hearth secrets put|ls|rm|reencrypt`: secrets sealed at rest, given to the function as `env.NAME`. */
export function registerSecretsCommands(program: Command): void {
  const secrets = program
    .command("secrets")
    .description(
      "Set, list or remove a function's secrets (sealed at rest, read as env.NAME), or reseal all after a key rotation",
    );
  secrets
    .command("put")
    .description("Set a secret: the value comes from stdin, else a prompt that does not echo (never an argument)")
    .argument("<fn>", "the function's name")
    .argument("<NAME>", "the variable's name, e.g. DB_PASSWORD")
    .addHelpText("after", '\nExample:\n  printf %s "$TOKEN" | hearth secrets put api STRIPE_KEY')
    .action(
      action(async ({ out }, fn: string, name: string) => {
        const value = await readValue(name);
        const { revision, version } = await client().putSecret(fn, name, value);
        out.result({ fn, name, revision, version });
        out.info(`✔ Secret ${name} of ${fn} set (revision ${revision}); ${fn} now serves version ${version}`);
        return EXIT.ok;
      }),
    );
  secrets
    .command("ls")
    .description("List a function's secrets (names and revisions, never values)")
    .argument("<fn>", "the function's name")
    .action(
      action(async ({ out }, fn: string) => {
        const list = await client().secrets(fn);
        out.result({ secrets: list });
        if (list.length === 0) out.info(`${fn} has no secrets.`);
        else printTable(out, list);
        return EXIT.ok;
      }),
    );
  secrets
    .command("rm")
    .description("Remove a secret (the function gets a new version without it)")
    .argument("<fn>", "the function's name")
    .argument("<NAME>", "the secret's name")
    .action(
      action(async ({ out }, fn: string, name: string) => {
        await client().removeSecret(fn, name);
        out.result({ deleted: name });
        out.info(`✔ Secret ${name} of ${fn} removed`);
        return EXIT.ok;
      }),
    );
  secrets
    .command("reencrypt")
    .description("Reseal every secret with the current key (after rotating HEARTH_SECRETS_KEY)")
    .action(
      action(async ({ out }) => {
        const report = await client().reencryptSecrets();
        out.result(report);
        out.info(`✔ Resealed ${report.resealed} secret(s) with the current key; ${report.current} already were`);
        for (const failure of report.failed) out.info(`✘ ${failure}`);
        if (report.failed.length === 0) return EXIT.ok;
        out.info(
          "Keep the previous key configured until these open: set the key they name as HEARTH_SECRETS_PREVIOUS_KEY.",
        );
        return EXIT.failed;
      }),
    );
}

function printTable(out: Output, list: readonly { name: string; revision: number; updatedAt: string }[]): void {
  const width = Math.max(4, ...list.map((s) => s.name.length));
  out.info(`${"NAME".padEnd(width)}  REVISION  UPDATED`);
  for (const s of list) out.info(`${s.name.padEnd(width)}  ${String(s.revision).padEnd(8)}  ${s.updatedAt}`);
}

/**
 * The value: all of stdin when it is not a terminal (one trailing newline dropped, as `echo` adds
 * it), else typed at a prompt that does not echo. Never taken as an argument: arguments land in
 * shell history and in `ps`.
 */
async function readValue(name: string): Promise<string> {
  const value = process.stdin.isTTY ? await promptHidden(`Value of ${name}: `) : await readStdin();
  if (value === "") throw new UsageError("the value is empty (pipe it in, or type it at the prompt)");
  return value;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

/** A prompt on stderr whose input is not echoed (raw mode): Enter ends it, Ctrl-C or Ctrl-D aborts. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = "";
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString("utf8")) {
        if (char === "\r" || char === "\n") return done();
        if (char === "\u0003" || char === "\u0004") return done(new UsageError("aborted"));
        if (char === "\u007f" || char === "\b") value = [...value].slice(0, -1).join("");
        else value += char;
      }
    };
    stdin.on("data", onData);
  });
}
