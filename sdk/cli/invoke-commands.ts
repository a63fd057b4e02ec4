import { readFileSync } from "node:fs";
import type { Command } from "commander";
import type { InvokeResponse } from "../client.ts";
import { resolveClientConfig } from "../config.ts";
import { loggedError } from "../invocation-error.ts";
import { action, client, collect } from "./args.ts";
import { type Output, UsageError } from "./output.ts";

interface InvokeFlags {
  data?: string;
  dataFile?: string;
  method?: string;
  path?: string;
  header?: string[];
  async?: boolean;
  idempotencyKey?: string;
  callback?: string;
  auth?: boolean;
}

export function registerInvokeCommands(program: Command): void {
  program
    .command("invoke")
    .description(
      "Call a function over HTTP and print its response body (with --async: queue it and print its id). A failed call prints the error on stderr and exits 1.",
    )
    .argument("<fn>", "the function's name")
    .option("-d, --data <body>", "request body (the method becomes POST)")
    .option("--data-file <path>", "request body from a file (the method becomes POST)")
    .option("-X, --method <method>", "HTTP method (default GET, or POST with a body)")
    .option("-p, --path <path>", "path and query after the function's URL, e.g. /users?id=1")
    .option("-H, --header <name:value>", "a request header (repeatable)", collect)
    .option("--async", "queue the call (Prefer: respond-async) and print its invocation id")
    .option("--idempotency-key <key>", "with --async: the same key returns the same invocation")
    .option("--callback <url>", "with --async: POST the result to this URL when done")
    .option("--auth", "send the token (a private function needs it); Hearth strips it before the function")
    .addHelpText(
      "after",
      '\nExamples:\n  hearth invoke hello\n  hearth invoke hello -d \'{"name":"Ada"}\' -H content-type:application/json\n  id=$(hearth invoke report --async) && hearth invocation $id',
    )
    .action(
      action<InvokeFlags, [string]>(async ({ opts, out }, name) => {
        if (opts.data !== undefined && opts.dataFile !== undefined)
          throw new UsageError("give one of --data and --data-file");
        const body = opts.dataFile !== undefined ? readFileSync(opts.dataFile) : opts.data;
        const headers: Record<string, string> = {};
        for (const h of opts.header ?? []) {
          const colon = h.indexOf(":");
          if (colon <= 0) throw new UsageError(`--header expects Name:Value, got ${JSON.stringify(h)}`);
          headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
        }
        const token = opts.auth ? resolveClientConfig().token : undefined;
        const request = { body, method: opts.method, path: opts.path, headers, ...(token ? { token } : {}) };
        if (opts.async) {
          const accepted = await client().invokeAsync(name, {
            ...request,
            idempotencyKey: opts.idempotencyKey,
            callbackUrl: opts.callback,
          });
          out.result(accepted);
          out.info(accepted.id); // alone on its line: `id=$(hearth invoke f --async)`
          return 0;
        }
        if (opts.idempotencyKey !== undefined || opts.callback !== undefined) {
          throw new UsageError("--idempotency-key and --callback apply to --async invocations only");
        }
        const res = await client().invoke(name, request);
        if (out.json) out.result({ status: res.status, headers: res.headers, body: res.text() });
        else if (res.status >= 400) {
          const error = hearthError(res);
          printFailure(res, error, error ? await loggedStack(name, error) : undefined);
        } else printBody(out, res.body);
        return res.status >= 400 ? 1 : 0;
      }),
    );

  program
    .command("invocation")
    .description("Show an async invocation: its state, attempts, timestamps and, once finished, its response")
    .argument("<id>", "the id `hearth invoke --async` printed")
    .action(
      action(async ({ out }, id: string) => {
        const inv = await client().invocation(id);
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
        if (inv.deadLettered)
          line("dead", `in the dead-letter queue; \`hearth dlq replay ${inv.function}\` runs it again`);
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
        if ("body" in response) printBody(out, Buffer.from(response.body, "base64"));
        return 0;
      }),
    );
}

/**
 * A body as its bytes; on a terminal a missing final newline is added so the prompt starts on its own
 * line. Piped or redirected, the bytes stay exact (`hearth invoke img > out.png`).
 */
function printBody(out: Output, body: Uint8Array): void {
  out.raw(body);
  if (process.stdout.isTTY && body.byteLength > 0 && body[body.byteLength - 1] !== 0x0a) out.info("");
}

/**
 * A failed call on stderr: Hearth's error answers (`{"error":{code,message}}`) as a sentence with the
 * code and status, and (when the function threw) the stack it logged; anything else the function
 * answered, as is.
 */
function printFailure(res: InvokeResponse, error: HearthErrorBody | null, stack: string | undefined): void {
  if (!error) {
    process.stderr.write(`✘ HTTP ${res.status}\n`);
    process.stderr.write(res.body);
    if (res.body.byteLength > 0 && res.body[res.body.byteLength - 1] !== 0x0a) process.stderr.write("\n");
    return;
  }
  const id = error.errorId ? `, error id ${error.errorId}` : "";
  process.stderr.write(`✘ ${error.message} [${error.code}, HTTP ${res.status}${id}]\n`);
  if (stack) process.stderr.write(`${indentStack(stack)}\n`);
}

interface HearthErrorBody {
  code: string;
  message: string;
  errorId?: string;
}

/**
 * When a call failed because the function threw: its stack, mapped to the function's sources, read
 * from its logs under the answer's error id (the answer itself never carries it). Undefined otherwise.
 */
async function loggedStack(name: string, error: HearthErrorBody): Promise<string | undefined> {
  if (error.code !== "ERR_FUNCTION_THREW" || error.errorId === undefined) return undefined;
  return (await loggedError(client(), name, error.errorId)) ?? undefined;
}

function hearthError(res: InvokeResponse): HearthErrorBody | null {
  const type = res.headers["content-type"];
  if (typeof type !== "string" || !type.includes("json")) return null;
  try {
    const error = (JSON.parse(res.text()) as { error?: HearthErrorBody }).error;
    return error && typeof error.code === "string" && typeof error.message === "string" ? error : null;
  } catch {
    return null;
  }
}

/** The stack's frames under the message (its first line repeats the message, so it is left out). */
function indentStack(stack: string): string {
  return stack
    .split("\n")
    .filter((l) => l.trimStart().startsWith("at "))
    .map((l) => `    ${l.trim()}`)
    .join("\n");
}
