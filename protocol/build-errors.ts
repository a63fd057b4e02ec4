import type { Message } from "esbuild";

/** esbuild's errors as `file:line:column: text`, one per line: the CLI and the gateway word them alike. */
export function formatBuildErrors(failure: { errors?: Message[]; message?: string }): string {
  const errors = failure.errors ?? [];
  if (errors.length === 0) return failure.message ?? "build failed";
  return errors
    .map((e) => (e.location ? `${e.location.file}:${e.location.line}:${e.location.column + 1}: ${e.text}` : e.text))
    .join("\n");
}
