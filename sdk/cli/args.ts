import { type Command, InvalidArgumentError } from "commander";
import { HearthClient } from "../client.ts";
import { resolveClientConfig } from "../config.ts";
import { createOutput, type Output } from "./output.ts";

// What every command shares: the client, integer arguments, repeatable flags, and the action wrapper.

export function client(): HearthClient {
  return new HearthClient(resolveClientConfig());
}

/** A commander argument parser for integers of at least `min`: `.option("--memory <MB>", "…", int())`. */
export function int(min = 1): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer of at least ${min}.`);
    return n;
  };
}

/** For repeatable flags (`--env A=1 --env B=2`): undefined until given, so "not given" stays visible. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** What an action gets: the command's options (with the global ones, e.g. --json) and the output. */
interface ActionContext<O> {
  readonly opts: O & { readonly json?: boolean };
  readonly out: Output;
}

/** Returned by commands that keep running (dev, the server roles): their own signal handlers end them. */
export const KEEP_RUNNING = -1;

/**
 * Wraps a command's action: commander passes `(...positionals, options, command)`; the action gets its
 * context first, then the positionals, and returns the exit code, with which the process exits at once
 * (an idle keep-alive socket must not hold the shell for seconds). Errors go to main.ts, which prints them.
 */
export function action<O, A extends unknown[]>(
  run: (ctx: ActionContext<O>, ...positionals: A) => Promise<number>,
): (...params: unknown[]) => Promise<void> {
  return async (...params) => {
    const command = params.at(-1) as Command;
    const opts = command.optsWithGlobals<O & { json?: boolean }>();
    const positionals = params.slice(0, command.registeredArguments.length) as A;
    const code = await run({ opts, out: createOutput(opts.json === true) }, ...positionals);
    if (code !== KEEP_RUNNING) process.exit(code);
  };
}
