/**
 * Cron ticks across publisher processes on a real nats-server: each process publishes every tick,
 * the trigger stream's dedupe window keeps one, and killing one publisher loses no tick. Real time
 * and real processes by design: the guarantee rests on JetStream's dedupe and on clocks that differ.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { expect, it } from "vitest";
import { ASYNC_HEADERS, STREAMS } from "../protocol/async.ts";
import { terminate } from "../protocol/terminate.ts";
import { startNatsServer } from "../sdk/dev/nats-server.ts";

const NODE = fileURLToPath(new URL("../node_modules/.bin/node", import.meta.url));
const PUBLISHER = fileURLToPath(new URL("./support/cron-publisher.ts", import.meta.url));
const TRIGGER = "every-second";
const TICK_MS = 1_000;

interface LogLine {
  readonly msg: string;
  /** When it was logged, ms by the real clock (pino's `time`; the skew only moves the ticker's clock). */
  readonly time: number;
  readonly scheduledTime?: string;
  readonly duplicate?: boolean;
}

interface Publisher {
  readonly skewMs: number;
  readonly child: ChildProcess;
  readonly lines: LogLine[];
  readonly ready: Promise<void>;
}

function spawnPublisher(natsUrl: string, skewMs: number): Publisher {
  const child = spawn(NODE, [PUBLISHER], {
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      HEARTH_CRON_SKEW_MS: String(skewMs),
      HEARTH_CRON_TRIGGER: TRIGGER,
      HEARTH_CRON_EXPRESSION: "* * * * * *",
    },
    // The IPC channel carries nothing: its closing tells the publisher that this test is gone.
    stdio: ["ignore", "pipe", "inherit", "ipc"],
  });
  const lines: LogLine[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`publisher ${skewMs} exited early: ${code ?? signal}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (text) => {
      const line = JSON.parse(text) as LogLine;
      lines.push(line);
      if (line.msg === "cron publisher ready") resolve();
    });
  });
  ready.catch(() => {}); // awaited below; an exit after readiness is not an error
  return { skewMs, child, lines, ready };
}

/** Every message in the trigger stream, as scheduled times (ISO). */
async function storedTicks(natsUrl: string): Promise<string[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(STREAMS.triggers);
    const ticks: string[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const msg = await jsm.streams.getMessage(STREAMS.triggers, { seq });
      if (msg) ticks.push(msg.header.get(ASYNC_HEADERS.scheduledTime));
    }
    expect(ticks).toHaveLength(state.messages);
    return ticks;
  } finally {
    await nc.close();
  }
}

it("stores exactly one message per tick from three skewed publishers, and none is lost when one is killed", async () => {
  await using nats = await startNatsServer({});
  const publishers = [-5_000, 0, 5_000].map((skewMs) => spawnPublisher(nats.url, skewMs));
  try {
    await Promise.all(publishers.map((p) => p.ready));
    const [behind, leader, ahead] = publishers as [Publisher, Publisher, Publisher];

    // Kill the unskewed publisher right at a tick, three ticks from now.
    const killAt = Math.ceil(Date.now() / TICK_MS) * TICK_MS + 3 * TICK_MS;
    await sleep(killAt - Date.now());
    const leaderExit = new Promise((resolve) => leader.child.once("exit", (_code, signal) => resolve(signal)));
    process.kill(leader.child.pid as number, "SIGKILL");
    const killedAt = Date.now();
    await sleep(10 * TICK_MS);
    await Promise.all([terminate(behind.child, 5_000), terminate(ahead.child, 5_000)]);
    expect(await leaderExit).toBe("SIGKILL");

    const ticks = await storedTicks(nats.url);
    // Exactly one message per scheduled time.
    expect(new Set(ticks).size).toBe(ticks.length);
    // No gap: every second between the first and the last tick is there.
    const times = ticks.map((t) => Date.parse(t)).sort((a, b) => a - b);
    const first = times[0] as number;
    const last = times.at(-1) as number;
    expect(times).toEqual(Array.from({ length: (last - first) / TICK_MS + 1 }, (_, i) => first + i * TICK_MS));
    // The window spans the kill and 10+ ticks after it (the publisher ahead reaches 5 s further).
    expect(first).toBeLessThan(killAt);
    expect(last).toBeGreaterThanOrEqual(killAt + 10 * TICK_MS);

    // The survivors kept publishing after the kill, each tick also tried by the other one.
    for (const survivor of [behind, ahead]) {
      const after = survivor.lines.filter((l) => l.msg === "cron tick published" && l.time > killedAt);
      expect(after.length, `publisher ${survivor.skewMs}`).toBeGreaterThanOrEqual(8);
    }
    const published = [behind, ahead, leader].flatMap((p) => p.lines.filter((l) => l.msg === "cron tick published"));
    expect(published.some((l) => l.duplicate)).toBe(true);
    // Every tick the survivors published after the kill is stored.
    const stored = new Set(ticks);
    for (const line of published.filter((l) => l.time > killedAt)) expect(stored).toContain(line.scheduledTime);
  } finally {
    for (const p of publishers) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  }
}, 40_000);
