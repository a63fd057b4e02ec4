import { afterAll, describe, expect, it } from "vitest";
import type { HearthError } from "../protocol/index.ts";
import { isAlive } from "../test/support/cli.ts";
import { PROCESS_KILLER } from "../test/support/hostile-cases.ts";
import { pollUntil } from "../test/support/poll.ts";
import { checkProcessEnv, ModuleCheckProcess } from "./module-check-process.ts";
import { prepareBundle } from "./prepare-bundle.ts";

/**
 * The gateway's deploy check runs in a child process, so a module that drives V8 into a catastrophic
 * error (one isolated-vm cannot contain) ends that process, not the gateway. Real processes and
 * isolates.
 */
const checks = new ModuleCheckProcess();
afterAll(() => checks.close());

const HANDLER = `export default { fetch() { return new Response("ok"); } };`;
const KILLER_MODULE = `${PROCESS_KILLER}\n${HANDLER}`;

async function module(name: string, source: string, memoryMb = 16) {
  return { name, memoryMb, script: await prepareBundle(source, `${name}.js`) };
}

const refusalOf = (check: Promise<void>) =>
  check.then(
    () => expect.fail("the module was accepted"),
    (err: HearthError) => err,
  );

describe("the deploy check's own process", () => {
  it("passes a good module and refuses a throwing one with its message, as the in-process check does", async () => {
    await checks.check(await module("good", HANDLER));
    const refused = await refusalOf(
      checks.check(await module("thrower", `throw new RangeError("bad config");\n${HANDLER}`)),
    );
    expect(refused.code).toBe("ERR_MODULE_INIT");
    expect(refused.message).toMatch(
      /^thrower was not deployed: its top level threw:\nRangeError: bad config\n\s+at thrower\.js:/,
    );
  });

  it("a module that brings V8 down is refused; the process is replaced and the checks queued behind it still run", async () => {
    await checks.check(await module("warm", HANDLER));
    const before = checks.pid as number;
    const killer = checks.check(await module("killer", KILLER_MODULE));
    const queued = [checks.check(await module("after-1", HANDLER)), checks.check(await module("after-2", HANDLER))];
    const refused = await refusalOf(killer);
    expect(refused.code).toBe("ERR_MODULE_INIT");
    expect(refused.message).toMatch(/^killer was not deployed: evaluating its top level brought V8 down \(SIGKILL\)/);
    await Promise.all(queued);
    expect(isAlive(before)).toBe(false);
    expect(checks.pid).toBeGreaterThan(0);
    expect(checks.pid).not.toBe(before);
  });

  it("keeps none of the gateway's secrets in the check process's environment", () => {
    expect(
      checkProcessEnv({
        PATH: "/usr/bin",
        HEARTH_LOG_LEVEL: "warn",
        HEARTH_TOKEN: "admin",
        HEARTH_SECRETS_KEY: "k",
        NATS_URL: "nats://user:password@127.0.0.1:4222",
        NATS_PASSWORD: "p",
        AWS_SECRET_ACCESS_KEY: "s",
      }),
    ).toEqual({ PATH: "/usr/bin", HEARTH_LOG_LEVEL: "warn" });
  });

  it("an idle process is stopped, and the next check starts another", async () => {
    const idle = new ModuleCheckProcess({ idleMs: 100 });
    try {
      await idle.check(await module("first", HANDLER));
      const pid = idle.pid as number;
      await pollUntil(
        () => isAlive(pid),
        (alive) => !alive,
        "the idle check process to stop",
        5_000,
      );
      expect(idle.pid).toBeUndefined();
      await idle.check(await module("second", HANDLER));
      expect(idle.pid).not.toBe(pid);
    } finally {
      await idle.close();
    }
  });

  it("close() ends the process; a check after it is refused", async () => {
    const own = new ModuleCheckProcess();
    await own.check(await module("good", HANDLER));
    const pid = own.pid as number;
    await own.close();
    expect(isAlive(pid)).toBe(false);
    await expect(own.check(await module("late", HANDLER))).rejects.toMatchObject({ code: "ERR_INTERNAL" });
  });
});
