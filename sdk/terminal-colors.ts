import { createColors } from "picocolors";

/**
 * Colour on a terminal, unless NO_COLOR is set to anything but the empty string (https://no-color.org).
 * Deliberately narrower than picocolors' own detection, which also colours whenever `CI` or
 * `FORCE_COLOR` is set, even into a pipe or a file: output a script or a log collector reads stays
 * plain.
 */
export function wantsColor(env: NodeJS.ProcessEnv, stream: { readonly isTTY?: boolean }): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

/** picocolors for what the CLI writes to stdout: no-ops unless stdout is a terminal (wantsColor). */
export const stdoutColors = createColors(wantsColor(process.env, process.stdout));
/** picocolors for what the CLI writes to stderr: no-ops unless stderr is a terminal (wantsColor). */
export const stderrColors = createColors(wantsColor(process.env, process.stderr));
