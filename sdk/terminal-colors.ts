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

/**
 * C0 and C1 control characters but tab and newline: a function's console lines reach the terminal
 * (`hearth logs`, `hearth dev`), and an escape sequence in one must not drive the developer's terminal.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const UNSAFE_CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `text` without the control characters a terminal would act on (tab and newline stay). */
export function withoutControlChars(text: string): string {
  return text.replace(UNSAFE_CONTROL_CHARS, "");
}
