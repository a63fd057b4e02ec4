import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { HearthClient } from "../client.ts";
import { resolveClientConfig } from "../config.ts";
import { UsageError } from "./output.ts";

// What every command shares: the client, parsing (with --json), its positional, integer flags.

export function client(): HearthClient {
  return new HearthClient(resolveClientConfig());
}

export function parse<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    const withJson = { ...options, json: { type: "boolean" } } as T & { json: { type: "boolean" } };
    return parseArgs({ args, options: withJson, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function positional(positionals: string[], what: string): string {
  const value = positionals[0];
  if (!value) throw new UsageError(`missing ${what}`);
  return value;
}

export function intFlag(value: string, flag: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`${flag} must be an integer of at least ${min}, got ${JSON.stringify(value)}`);
  return n;
}

export function optionalInt(value: string | undefined, flag: string, min = 1): number | undefined {
  return value === undefined ? undefined : intFlag(value, flag, min);
}
