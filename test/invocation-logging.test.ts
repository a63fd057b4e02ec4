import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { thrownResponse } from "../gateway/error-response.ts";
import { HearthError } from "../protocol/index.ts";
import { type InProcessCluster, startInProcessCluster } from "./support/in-process.ts";

/** A pino logger whose lines land in an array, parsed. */
function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

describe("process logs about failed requests", () => {
  it("an expected system error is one line without a stack; only the unexpected carries one", async () => {
    const { log, lines } = capture();
    for (let i = 0; i < 3; i++) thrownResponse(new HearthError("ERR_NO_CAPACITY", "no room"), log);
    thrownResponse(new Error("bug"), log);
    await expect.poll(() => lines.length).toBe(4);
    for (const line of lines.slice(0, 3)) {
      expect(line).toMatchObject({ level: 40, code: "ERR_NO_CAPACITY", reason: "no room", msg: "request failed" });
      expect(JSON.stringify(line)).not.toMatch(/stack/);
    }
    expect(lines[3]).toMatchObject({ level: 50, err: { message: "bug" } });
    expect(String((lines[3]?.err as { stack?: string } | undefined)?.stack)).toMatch(/Error: bug/);
  });

  it("a failed invocation is logged once by the gateway with its function, version and invocation id", async () => {
    const { log, lines } = capture();
    let cluster: InProcessCluster | undefined;
    try {
      // No scheduler, no worker: every invocation fails with ERR_NO_CAPACITY.
      cluster = await startInProcessCluster({ scheduler: false, worker: false, gateway: { log } });
      const info = await cluster.hearth.deploy("lonely", {
        code: `export default { fetch() { return new Response("x"); } };`,
      });
      const res = await cluster.hearth.invoke("lonely");
      expect(res.status).toBe(503);
      const id = res.headers["x-hearth-id"];
      await expect.poll(() => lines.filter((l) => l.msg === "invocation failed")).toHaveLength(1);
      const line = lines.find((l) => l.msg === "invocation failed");
      expect(line).toMatchObject({ fn: "lonely", version: info.version, invocationId: id, code: "ERR_NO_CAPACITY" });
      expect(lines.filter((l) => JSON.stringify(l).includes("stack"))).toEqual([]);
    } finally {
      await cluster?.close();
    }
  });
});
