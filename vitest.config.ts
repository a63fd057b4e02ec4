import { defineConfig } from "vitest/config";

/** Files that measure the machine (CPU fairness) and must not share it with other test files. */
const EXCLUSIVE = "**/*.exclusive.test.ts";

export default defineConfig({
  test: {
    // Each test file gets its own process: isolated-vm needs --no-node-snapshot on Node ≥ 20 (its README).
    pool: "forks",
    execArgv: ["--no-node-snapshot"],
    testTimeout: 30_000,
    // Executor processes log every expected failure the tests provoke; the assertions tell the story.
    env: { HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? "fatal" },
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts", "{control,gateway,runtime,scheduler,sdk,protocol}/**/*.test.ts"],
          exclude: [EXCLUSIVE, "**/node_modules/**"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        // Run after the main group has finished, one file at a time.
        test: { name: "exclusive", include: [EXCLUSIVE], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
