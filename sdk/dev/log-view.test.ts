import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { wantsColor } from "../terminal-colors.ts";
import { startLocalCluster } from "./cluster.ts";
import { ComponentLogs, createLineRenderer, devLogFormat, type LogFormat } from "./log-view.ts";

/** 2026-11-23T10:00:00.123Z, shown in local time as the renderer does. */
const TIME_MS = Date.UTC(2026, 10, 23, 10, 0, 0, 123);
const pad = (n: number, width = 2) => String(n).padStart(width, "0");
const at = new Date(TIME_MS);
const LOCAL_TIME = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`;

/** Real pino records, as a component's createLogger writes them, with a fixed time. */
function recordsOf(component: string, pid: number, write: (log: pino.Logger) => void): string[] {
  const lines: string[] = [];
  const log = pino(
    { base: { component, pid }, timestamp: () => `,"time":${TIME_MS}` },
    { write: (line: string) => lines.push(line.trimEnd()) },
  );
  write(log);
  return lines;
}

const render = createLineRenderer({ colorize: false });

describe("rendering one line of a component", () => {
  it("shows an executor's console line with its worker, pid, function, version, short invocation id and other fields", () => {
    const [line] = recordsOf("executor", 4711, (log) =>
      log
        .child({ fn: "hello", version: "2926b0d61b87adb0", invocationId: "eBYwu3piarRo4wkZbmmSgo" })
        .info({ source: "console", consoleLevel: "log" }, "hello world"),
    );
    expect(render("worker-1", line as string)).toBe(
      `[${LOCAL_TIME}] INFO: worker-1/executor[4711] hello [2926b0d] kZbmmSgo hello world {"source":"console","consoleLevel":"log"}\n`,
    );
  });

  it("names a component by its role, shows a version number as v<n>, and drops a workerId the role already says", () => {
    const [ready, served] = recordsOf("worker", 100, (log) => {
      log.child({ workerId: "worker-2" }).info({ executors: 2 }, "worker ready");
      log.warn({ fn: "hello", version: "2926b0d61b87adb0", versionId: 3, invocationId: "abcdefgh12345678" }, "slow");
    });
    expect(render("worker-2", ready as string)).toBe(`[${LOCAL_TIME}] INFO: worker-2 worker ready {"executors":2}\n`);
    expect(render("worker-2", served as string)).toBe(`[${LOCAL_TIME}] WARN: worker-2 hello [v3] 12345678 slow\n`);
  });

  it("keeps an error's stack on the lines after the record", () => {
    const err = new Error("connection disconnected");
    err.stack = "Error: connection disconnected\n    at drain (nats.js:1:1)";
    const [line] = recordsOf("gateway", 7, (log) => log.error({ err, signal: "SIGINT" }, "shutdown failed"));
    const text = render("gateway", line as string);
    expect(text.split("\n")[0]).toBe(`[${LOCAL_TIME}] ERROR: gateway shutdown failed {"signal":"SIGINT"}`);
    expect(text).toContain("at drain (nats.js:1:1)");
  });

  it("passes a crash trace, a blank line and JSON that is not a pino record through unchanged", () => {
    for (const line of [
      "node:internal/modules/run_main:123",
      "    at main (x.js:1:1)",
      "",
      '{"restarted":"gateway"}',
      "{not json",
    ])
      expect(render("gateway", line)).toBe(`${line}\n`);
  });

  it("removes control characters a function put in its console line, so it cannot drive the terminal", () => {
    const [line] = recordsOf("executor", 1, (log) => log.info("\u001b[2J\u001b]0;owned\u0007red\u009b"));
    expect(render("worker-1", line as string)).toBe(`[${LOCAL_TIME}] INFO: worker-1/executor[1] [2J]0;ownedred\n`);
  });

  it("colours only when asked", () => {
    const [line] = recordsOf("gateway", 1, (log) => log.error("boom"));
    expect(createLineRenderer({ colorize: true })("gateway", line as string)).toContain("\u001b[31mERROR\u001b[39m");
    expect(render("gateway", line as string)).not.toContain("\u001b");
  });
});

describe("choosing the format", () => {
  it("is pretty on a terminal, JSON elsewhere, and HEARTH_LOG_FORMAT decides when set", () => {
    expect(devLogFormat({}, { isTTY: true })).toBe("pretty");
    expect(devLogFormat({}, {})).toBe("json");
    expect(devLogFormat({ HEARTH_LOG_FORMAT: "json" }, { isTTY: true })).toBe("json");
    expect(devLogFormat({ HEARTH_LOG_FORMAT: "pretty" }, {})).toBe("pretty");
  });

  it("refuses an unknown format, naming where it came from", () => {
    expect(() => devLogFormat({ HEARTH_LOG_FORMAT: "yaml" }, {})).toThrow(
      expect.objectContaining({ code: "ERR_BAD_REQUEST", message: expect.stringContaining("HEARTH_LOG_FORMAT") }),
    );
  });

  it("startLocalCluster refuses an unknown logFormat before starting anything", async () => {
    await expect(startLocalCluster({ env: {}, logFormat: "yaml" as LogFormat })).rejects.toMatchObject({
      code: "ERR_BAD_REQUEST",
      message: expect.stringContaining("logFormat"),
    });
  });

  it("colours a terminal unless NO_COLOR is set", () => {
    expect(wantsColor({}, { isTTY: true })).toBe(true);
    expect(wantsColor({ NO_COLOR: "1" }, { isTTY: true })).toBe(false);
    expect(wantsColor({ NO_COLOR: "" }, { isTTY: true })).toBe(true);
    expect(wantsColor({}, {})).toBe(false);
  });
});

describe("ComponentLogs", () => {
  it("renders whole lines of a real child process, even when a record arrives in pieces, and keeps stderr apart", async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.on("data", (chunk: Buffer) => {
      out += chunk;
    });
    stderr.on("data", (chunk: Buffer) => {
      err += chunk;
    });
    const logs = new ComponentLogs({ colorize: false, stdout, stderr });
    // One record written in two pieces 50 ms apart, then a crash trace on stderr.
    const script = `
      process.stdout.write('{"level":30,"time":${TIME_MS},"component":"scheduler",');
      setTimeout(() => {
        process.stdout.write('"pid":9,"msg":"leading"}\\n');
        process.stderr.write("Error: boom\\n    at x (y.js:1:1)\\n");
      }, 50);`;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    logs.attach("scheduler", child);
    await logs.flushed(5_000);
    expect(out).toBe(`[${LOCAL_TIME}] INFO: scheduler leading\n`);
    expect(err).toBe("Error: boom\n    at x (y.js:1:1)\n");
  });
});
