import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "{gateway,runtime,scheduler,sdk,protocol}/**/*.test.ts"],
    // Each test file gets its own process: isolated-vm needs --no-node-snapshot (research/isolated-vm.md §0.1).
    pool: "forks",
    execArgv: ["--no-node-snapshot"],
    testTimeout: 30_000,
    // Executor processes log every expected failure the tests provoke; the assertions tell the story.
    env: { HEARTH_LOG_LEVEL: process.env.HEARTH_LOG_LEVEL ?? "fatal" },
    hookTimeout: 60_000,
  },
});
