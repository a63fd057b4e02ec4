import { Command } from "commander";
import packageJson from "../../package.json" with { type: "json" };
import { stderrColors as pc } from "../terminal-colors.ts";
import { registerCommands } from "./commands.ts";

/** The CLI's version: the package's. */
export const CLI_VERSION: string = packageJson.version;

/**
 * The `hearth` command line, parsed by commander: per-command --help, --version, short flags and a
 * "did you mean" for a mistyped command or option. Errors throw (exitOverride) so main.ts picks the
 * exit code.
 *
 * Options are positional: the program's (--version) are read before the command and each command's
 * after it, so `hearth logs fn --version 3` means the function's version 3, not the CLI's. The shared
 * ones (--json, --url) are therefore given to every command as its own.
 */
export function createProgram(): Command {
  const program = new Command("hearth")
    .description("Hearth: serverless functions in V8 isolates, routed over NATS.")
    .version(CLI_VERSION, "-v, --version", "print the CLI's version")
    .enablePositionalOptions()
    .helpOption("-h, --help", "show help for a command")
    .helpCommand("help [command]", "show help for a command")
    .showSuggestionAfterError(true)
    .showHelpAfterError(pc.dim("(add --help for usage)"))
    .configureOutput({ outputError: (text, write) => write(pc.red(text)) })
    .exitOverride()
    .hook("preAction", (_program, command) => {
      const { url } = command.optsWithGlobals<{ url?: string }>();
      if (url) process.env.HEARTH_URL = url; // one place the client, its errors and hints all read
    })
    .addHelpText(
      "after",
      "\nEnvironment: HEARTH_URL (else the URL a running `hearth dev` recorded, else http://127.0.0.1:8080),\nHEARTH_TOKEN (else the token saved by `hearth dev`), NO_COLOR (plain output).\nGet started: hearth init && hearth deploy. Docs: README.md and docs/.",
    );
  addSharedOptions(program);
  registerCommands(program);
  for (const command of leaves(program)) addSharedOptions(command);
  return program;
}

function addSharedOptions(command: Command): void {
  command
    .option("--json", "print results as JSON, one line each")
    .option(
      "-u, --url <url>",
      "the gateway (default: HEARTH_URL, the running `hearth dev`, else http://127.0.0.1:8080)",
    );
}

/** The commands that run something (those without subcommands). */
function leaves(command: Command): Command[] {
  return command.commands.flatMap((c) => (c.commands.length > 0 ? leaves(c) : [c]));
}
