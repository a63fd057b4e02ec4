/**
 * Async invocations and triggers: `BENCH_PARTS=async npm run bench`, or `node bench/async.ts`.
 *
 * On the processes `hearth dev` runs (bench/async-cluster.ts: nats-server with file-backed
 * JetStream, gateway, scheduler, one worker with one executor; no NATS authorization), each round:
 *
 * 1. accepting (bench/async-accept.ts): BENCH_ASYNC_CLIENTS closed-loop clients POST
 *    `Prefer: respond-async` to a trivial function for BENCH_ASYNC_SECONDS, first with no worker
 *    (accepting alone), then a worker drains that backlog (completed/s), then accepting again while
 *    it drains (sustained). CPU µs per accepted or completed invocation, by process.
 * 2. latency (bench/async-latency.ts): warm function, empty queue, one at a time: 202, worker takes
 *    it, function starts, "succeeded" visible.
 * 3. a jetstream:// trigger through a trivial queue() (bench/async-triggers.ts), per batch size:
 *    messages/s and the latency of single messages.
 * 4. after the rounds, bench/ingest-latency.ts (RabbitMQ and MQTT ingest hop), if present, as its
 *    own process; its table is included as it prints it.
 *
 * Env: BENCH_ROUNDS (3), BENCH_ASYNC_SECONDS (5), BENCH_ASYNC_CLIENTS (64), BENCH_ASYNC_DRAIN_SECONDS
 * (8), BENCH_ASYNC_SAMPLES (300), BENCH_TRIGGER_MESSAGES (50000), BENCH_TRIGGER_BATCHES (10,100),
 * BENCH_TRIGGER_SAMPLES (200), BENCH_ASYNC_INGEST (1; 0 skips part 4).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import {
  type AcceptSample,
  type DrainSample,
  measureAcceptAlone,
  measureDrain,
  measureSustained,
  type SustainedSample,
} from "./async-accept.ts";
import { type CpuByRole, startAsyncCluster } from "./async-cluster.ts";
import { type LatencySample, measureAsyncLatency, START_TIME_FN } from "./async-latency.ts";
import { createUserStream, measureTrigger, QUEUE_FN, type TriggerSample } from "./async-triggers.ts";
import { median, met, percentile, ROOT, saveResults, spread, table } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SETTINGS = {
  fn: "async-noop",
  clients: Number(process.env.BENCH_ASYNC_CLIENTS ?? 64),
  seconds: Number(process.env.BENCH_ASYNC_SECONDS ?? 5),
  warmupSeconds: 2,
  drainWindowSeconds: Number(process.env.BENCH_ASYNC_DRAIN_SECONDS ?? 8),
};
const SAMPLES = Number(process.env.BENCH_ASYNC_SAMPLES ?? 300);
const TRIGGER_MESSAGES = Number(process.env.BENCH_TRIGGER_MESSAGES ?? 50_000);
const TRIGGER_BATCHES = (process.env.BENCH_TRIGGER_BATCHES ?? "10,100").split(",").map(Number);
const TRIGGER_SAMPLES = Number(process.env.BENCH_TRIGGER_SAMPLES ?? 200);
const INGEST = process.env.BENCH_ASYNC_INGEST !== "0";
const QUEUE_FN_NAME = "async-queue";
/** Targets of the async issue. */
const TARGET = { acceptedPerS: 5_000, startP50Ms: 10 };

interface Round {
  /** CPU ms a fixed piece of JS work took in this process at the round's start (see calibrate). */
  readonly calibrationMs: number;
  readonly alone: AcceptSample;
  readonly drain: DrainSample;
  readonly sustained: SustainedSample;
  readonly latency: LatencySample;
  readonly triggers: TriggerSample[];
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const f0 = (n: number) => n.toFixed(0);
const cpuLine = (cpu: CpuByRole) =>
  Object.entries(cpu)
    .map(([role, us]) => `${role} ${us.toFixed(1)}`)
    .join(", ");

/**
 * CPU time of a fixed piece of work (JSON round trips of a small object): how fast a core of this
 * shared machine runs now. Between runs it moved by tens of percent, and the CPU per accept with it.
 */
function calibrate(): number {
  const sample = { id: "abc", items: Array.from({ length: 20 }, (_, i) => ({ i, name: `item-${i}` })) };
  const before = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < 20_000; i++) bytes += (JSON.parse(JSON.stringify(sample)) as typeof sample).items.length;
  const { user, system } = process.cpuUsage(before);
  if (bytes === 0) throw new Error("unreachable");
  return (user + system) / 1000;
}

async function measureRounds(): Promise<Round[]> {
  const cluster = await startAsyncCluster();
  const rounds: Round[] = [];
  try {
    await cluster.hearth.deploy(SETTINGS.fn, { code: START_TIME_FN });
    await cluster.hearth.deploy(QUEUE_FN_NAME, { code: QUEUE_FN });
    await createUserStream(cluster);
    calibrate(); // JIT warm-up: the first call runs ~20 % slower
    for (let round = 1; round <= ROUNDS; round++) {
      const calibrationMs = calibrate();
      log(`round ${round}: load average ${loadavg()[0]?.toFixed(2)}, calibration ${calibrationMs.toFixed(0)} ms CPU`);
      const alone = await measureAcceptAlone(cluster, SETTINGS);
      log(
        `round ${round} accept alone: ${f0(alone.acceptedPerS)}/s (seconds ${alone.minPerS}–${alone.maxPerS}), p50 ${alone.p50Ms.toFixed(1)} ms, p99 ${alone.p99Ms.toFixed(1)} ms, µs/accept: ${cpuLine(alone.cpuPerAccept)}, failures ${JSON.stringify(alone.failures)}, other load ${alone.otherCores.toFixed(2)} cores`,
      );
      const drain = await measureDrain(cluster, SETTINGS);
      log(
        `round ${round} drain: ${f0(drain.completedPerS)}/s of ${drain.backlog} (first after ${f0(drain.firstCompletionMs)} ms, ${drain.purged} purged), µs/completion: ${cpuLine(drain.cpuPerCompletion)}, other load ${drain.otherCores.toFixed(2)} cores`,
      );
      const sustained = await measureSustained(cluster, SETTINGS);
      log(
        `round ${round} sustained: ${f0(sustained.acceptedPerS)} accepted/s, ${f0(sustained.completedPerS)} completed/s, p99 ${sustained.p99Ms.toFixed(1)} ms, µs/accept: ${cpuLine(sustained.cpuPerAccept)}, other load ${sustained.otherCores.toFixed(2)} cores`,
      );
      const latency = await measureAsyncLatency(cluster, SETTINGS.fn, SAMPLES, 20);
      log(
        `round ${round} latency p50: 202 ${percentile(latency.acceptedMs, 50).toFixed(2)} ms, running ${percentile(latency.runningMs, 50).toFixed(2)}, start ${percentile(latency.startMs, 50)}, succeeded ${percentile(latency.succeededMs, 50).toFixed(2)} (API: ${latency.apiState})`,
      );
      const triggers: TriggerSample[] = [];
      for (const batchSize of TRIGGER_BATCHES) {
        const t = await measureTrigger(
          cluster,
          QUEUE_FN_NAME,
          `r${round}b${batchSize}`,
          batchSize,
          TRIGGER_MESSAGES,
          TRIGGER_SAMPLES,
        );
        triggers.push(t);
        log(
          `round ${round} trigger batch ${batchSize}: ${f0(t.messagesPerS)} msgs/s (stored ${f0(t.publishedPerS)}/s), single p50 ${percentile(t.latencyMs, 50).toFixed(2)} ms, µs/msg: ${cpuLine(t.cpuPerMessage)}, other load ${t.otherCores.toFixed(2)} cores`,
        );
      }
      await cluster.stopWorker();
      rounds.push({ calibrationMs, alone, drain, sustained, latency, triggers });
    }
  } finally {
    await cluster.close();
  }
  return rounds;
}

/** bench/ingest-latency.ts (another part's file) as its own process: its stdout table, or why it did not run. */
function runIngestLatency(): Promise<string> {
  const script = join(ROOT, "bench/ingest-latency.ts");
  if (!existsSync(script)) return Promise.resolve("bench/ingest-latency.ts is not there: skipped.");
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, BENCH_ROUNDS: String(ROUNDS) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), 10 * 60_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? out.trim() : `bench/ingest-latency.ts failed (code ${code}, signal ${signal}):\n${out}`);
    });
  });
}

const spreadOf = (rounds: Round[], pick: (r: Round) => number, digits = 0) => spread(rounds.map(pick), digits);
const cpuOf = (rounds: Round[], pick: (r: Round) => CpuByRole, role: keyof CpuByRole | "gateway+nats") =>
  spreadOf(rounds, (r) => (role === "gateway+nats" ? pick(r).gateway + pick(r).nats : pick(r)[role]), 1);

function report(rounds: Round[], ingest: string | null): string {
  const acceptRow = (phase: string, pick: (r: Round) => AcceptSample) => ({
    phase,
    [`accepted/s (≥ ${TARGET.acceptedPerS})`]: `${spreadOf(rounds, (r) => pick(r).acceptedPerS)} ${met(
      median(rounds.map((r) => pick(r).acceptedPerS)) >= TARGET.acceptedPerS,
    )}`,
    "slowest second": spreadOf(rounds, (r) => pick(r).minPerS),
    "202 p50 ms": spreadOf(rounds, (r) => pick(r).p50Ms, 1),
    "202 p99 ms": spreadOf(rounds, (r) => pick(r).p99Ms, 1),
    "gateway µs": cpuOf(rounds, (r) => pick(r).cpuPerAccept, "gateway"),
    "nats-server µs": cpuOf(rounds, (r) => pick(r).cpuPerAccept, "nats"),
    "gateway + nats µs": cpuOf(rounds, (r) => pick(r).cpuPerAccept, "gateway+nats"),
    "worker µs": cpuOf(rounds, (r) => pick(r).cpuPerAccept, "worker"),
    "executor µs": cpuOf(rounds, (r) => pick(r).cpuPerAccept, "executor"),
    "scheduler µs": cpuOf(rounds, (r) => pick(r).cpuPerAccept, "scheduler"),
    "load generator µs": cpuOf(rounds, (r) => pick(r).cpuPerAccept, "bench"),
    "other load, cores": spreadOf(rounds, (r) => pick(r).otherCores, 2),
    "non-202": rounds.reduce((n, r) => n + Object.values(pick(r).failures).reduce((a, b) => a + b, 0), 0),
  });
  const drainRow = (
    phase: string,
    pick: (r: Round) => { completedPerS: number; cpuPerCompletion: CpuByRole; otherCores: number },
  ) => ({
    phase,
    "completed/s": spreadOf(rounds, (r) => pick(r).completedPerS),
    "worker µs": cpuOf(rounds, (r) => pick(r).cpuPerCompletion, "worker"),
    "executor µs": cpuOf(rounds, (r) => pick(r).cpuPerCompletion, "executor"),
    "nats-server µs": cpuOf(rounds, (r) => pick(r).cpuPerCompletion, "nats"),
    "gateway µs": cpuOf(rounds, (r) => pick(r).cpuPerCompletion, "gateway"),
    "scheduler µs": cpuOf(rounds, (r) => pick(r).cpuPerCompletion, "scheduler"),
    "other load, cores": spreadOf(rounds, (r) => pick(r).otherCores, 2),
  });
  const latencyRow = (step: string, pick: (l: LatencySample) => number[], target?: number) => {
    const p = (q: number) => rounds.map((r) => percentile(pick(r.latency), q));
    const p50 = spread(p(50), 2);
    return {
      "from just before the POST to": step,
      "p50 ms": target === undefined ? p50 : `${p50} ${met(median(p(50)) <= target)}`,
      "p90 ms": spread(p(90), 2),
      "p99 ms": spread(p(99), 2),
    };
  };
  const triggerRows = TRIGGER_BATCHES.map((batchSize, i) => {
    const ts = rounds.map((r) => r.triggers[i] as TriggerSample);
    const lat = (q: number) =>
      spread(
        ts.map((t) => percentile(t.latencyMs, q)),
        2,
      );
    const cpu = (role: keyof CpuByRole) =>
      spread(
        ts.map((t) => t.cpuPerMessage[role]),
        1,
      );
    return {
      "batch size": batchSize,
      "messages/s": spread(
        ts.map((t) => t.messagesPerS),
        0,
      ),
      "stored/s (burst)": spread(
        ts.map((t) => t.publishedPerS),
        0,
      ),
      "single p50 ms": lat(50),
      "single p90 ms": lat(90),
      "single p99 ms": lat(99),
      "worker µs/msg": cpu("worker"),
      "executor µs/msg": cpu("executor"),
      "nats-server µs/msg": cpu("nats"),
      "other load, cores": spread(
        ts.map((t) => t.otherCores),
        2,
      ),
    };
  });
  const backlogs = rounds.map((r) => r.drain.backlog);
  return [
    `## Async invocations (${SETTINGS.clients} keep-alive clients, ${SETTINGS.seconds} s per run, ${ROUNDS} rounds; median (min–max) of rounds)`,
    "",
    `Processes unpinned on this ${cpus().length}-core machine, the load generator in the benchmark's own process; NATS without authorization (\`hearth dev\` adds a permission check per publish). 'other load': cores busy outside the cluster and the benchmark meanwhile. Machine speed, CPU ms of a fixed JS workload at each round's start: ${spreadOf(rounds, (r) => r.calibrationMs)}.`,
    "",
    "Accepting: each 202 = status in KV + message acked by the file-backed stream. CPU is per accepted invocation, by process (/proc/<pid>/stat). 'alone': no worker runs; 'sustained': a worker drains meanwhile.",
    "",
    table([acceptRow("alone", (r) => r.alone), acceptRow("sustained", (r) => r.sustained)]),
    "",
    `Draining (one worker, one executor; CPU per completed invocation). 'alone': the backlog of the accept-alone run (${spread(backlogs, 0)} invocations), measured up to ${SETTINGS.drainWindowSeconds} s from the first completion (first completion ${spreadOf(rounds, (r) => r.drain.firstCompletionMs)} ms after the worker was ready); 'sustained': completions while accepting.`,
    "",
    table([drainRow("alone", (r) => r.drain), drainRow("sustained", (r) => r.sustained)]),
    "",
    `Latency, warm, queue empty, one at a time (${SAMPLES} per round after 20 warm-up):`,
    "",
    table([
      latencyRow("202 (stored)", (l) => l.acceptedMs),
      latencyRow('"running" visible (worker took it)', (l) => l.runningMs),
      latencyRow("function start (its Date.now(), ±1 ms)", (l) => l.startMs, TARGET.startP50Ms),
      latencyRow('"succeeded" visible', (l) => l.succeededMs),
    ]),
    "",
    `## jetstream:// trigger through queue() (${TRIGGER_MESSAGES} messages of 64 B stored in a burst per run, timed until all are acked; single messages: ${TRIGGER_SAMPLES} per run, one at a time, js.publish → the worker's ack seen)`,
    "",
    table(triggerRows),
    ...(ingest === null ? [] : ["", "## Broker ingest hop (bench/ingest-latency.ts)", "", ingest]),
  ].join("\n");
}

/** Runs the rounds and the ingest part; returns the markdown report (also saved in bench/results/). */
export async function runAsync(): Promise<string> {
  const rounds = await measureRounds();
  const ingest = INGEST ? await runIngestLatency() : null;
  const markdown = report(rounds, ingest);
  const saved = saveResults("async", { settings: SETTINGS, rounds, ingest }, markdown);
  return `${markdown}\n\n(raw: ${saved})`;
}

if (import.meta.main) console.log(await runAsync());
