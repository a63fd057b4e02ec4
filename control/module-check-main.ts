/**
 * The deploy check's own process (module-check-process.ts): evaluates each module the gateway sends
 * over IPC in a ModuleChecker and answers. A module that drives V8 into a catastrophic error takes
 * this process down, never the gateway.
 */
import { codeOf, createLogger } from "../protocol/index.ts";
import { ModuleChecker } from "./module-check.ts";
import type { CheckAnswer, CheckRequest } from "./module-check-process.ts";

const log = createLogger("module-check");
const checker = new ModuleChecker({
  log,
  onCatastrophicError: (message) => {
    log.fatal(
      { message },
      "catastrophic isolate error while checking a deploy: this process ends, the gateway goes on",
    );
    // V8 cannot go on and process.exit() can hang here; SIGKILL ends at once and leaves no core file.
    process.kill(process.pid, "SIGKILL");
  },
});

const answer = (message: CheckAnswer) => process.send?.(message);

process.on("message", (request: CheckRequest) => {
  checker.check(request.module).then(
    () => answer({ id: request.id }),
    (err: unknown) =>
      answer({
        id: request.id,
        error: { code: codeOf(err), message: err instanceof Error ? err.message : String(err) },
      }),
  );
});
// The gateway went away (or closed the channel): nothing is left to answer.
process.on("disconnect", () => process.exit(0));
