#!/usr/bin/env node
/** The `hearth` CLI: `hearth <verb> [args]`. Exit codes: 0 ok, 1 failed, 2 usage. */
import { COMMANDS } from "./commands.ts";
import { createOutput, EXIT, UsageError } from "./output.ts";

function help(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage}\n      ${c.summary}`);
  return `Hearth: serverless functions in V8 isolates.\n\nUsage:\n${lines.join("\n")}\n\nEnvironment: HEARTH_URL (default http://127.0.0.1:8080), HEARTH_TOKEN (else the token saved by \`hearth dev\`).\n`;
}

const [verb, ...args] = process.argv.slice(2);
const out = createOutput(args.includes("--json"));
if (!verb || verb === "help" || verb === "--help" || verb === "-h") {
  process.stdout.write(help());
  process.exit(verb ? EXIT.ok : EXIT.usage);
}
const command = COMMANDS[verb];
if (!command) {
  process.stderr.write(`✘ Unknown command "${verb}".\n\n${help()}`);
  process.exit(EXIT.usage);
}
try {
  const code = await command.run(args, out);
  if (code >= 0) process.exit(code);
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`✘ ${err.message}\nUsage: ${command.usage}\n`);
    process.exit(EXIT.usage);
  }
  out.error(err);
  process.exit(EXIT.failed);
}
