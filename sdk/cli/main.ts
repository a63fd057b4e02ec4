#!/usr/bin/env node
/** The `hearth` CLI: `hearth <command> [args]`. Exit codes: 0 ok, 1 failed, 2 usage. */
import { CommanderError } from "commander";
import { stderrColors as pc } from "../terminal-colors.ts";
import { createOutput, EXIT, UsageError } from "./output.ts";
import { createProgram } from "./program.ts";

const program = createProgram();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Commander has printed its own message (help, version, an unknown option with its suggestion).
  if (err instanceof CommanderError)
    process.exit(err.exitCode === 0 || err.code === "commander.version" ? EXIT.ok : EXIT.usage);
  if (err instanceof UsageError) {
    const command = commandOf(process.argv.slice(2));
    process.stderr.write(`${pc.red(`✘ ${err.message}`)}\n${pc.dim(`(see hearth ${command}--help)`)}\n`);
    process.exit(EXIT.usage);
  }
  createOutput(process.argv.includes("--json")).error(err);
  process.exit(EXIT.failed);
}

/** The command words before the first flag or argument that is not a command, e.g. "secrets put ". */
function commandOf(args: string[]): string {
  let command = program;
  let words = "";
  for (const arg of args) {
    const sub = command.commands.find((c) => c.name() === arg);
    if (!sub) break;
    command = sub;
    words += `${arg} `;
  }
  return words;
}
