import { type ChildProcess, spawn } from "node:child_process";
import { terminate } from "../../protocol/index.ts";
import { CLI } from "./cli.ts";
import { processTree } from "./proc.ts";

/** A Hearth component (`hearth worker`, `hearth scheduler`, ...) running as its own process. */
export interface ComponentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The process and every descendant (a worker's executors), read now. */
  tree(): number[];
  /** SIGSTOP/SIGCONT/SIGKILL to the whole tree: a paused or crashed machine, not one process. */
  signalTree(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** Spawns `hearth <role>` against `natsUrl`; stop() is bounded and idempotent. */
export function spawnComponent(role: "worker" | "scheduler" | "gateway", env: NodeJS.ProcessEnv): ComponentProcess {
  const child = spawn(process.execPath, [CLI, role], {
    env: { ...process.env, HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? "fatal", ...env },
    // The IPC channel carries nothing: its closing tells the component that its parent (this test) is gone.
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pid = child.pid as number;
  let stopped: Promise<void> | null = null;
  return {
    child,
    pid,
    tree: () => processTree(pid),
    signalTree(signal) {
      for (const p of processTree(pid)) {
        try {
          process.kill(p, signal);
        } catch {}
      }
    },
    stop() {
      stopped ??= (async () => {
        const tree = processTree(pid);
        for (const p of tree) {
          try {
            process.kill(p, "SIGCONT");
          } catch {}
        }
        // A worker's executors exit when its IPC channel closes, so the child alone is terminated.
        await terminate(child, 5_000);
      })();
      return stopped;
    },
  };
}
