/**
 * Keep-alive, live: the Azure Functions 2019 sample replayed on a real cluster with time compressed
 * by a factor F, next to the virtual-time replay (bench/keepalive-replay.ts) of exactly the same
 * functions, arrivals and scaled parameters.
 *
 *   node bench/keepalive-live.ts [--factor=60] [--policy=hazard|fixed10] [--functions=N]
 *     [--skip-hottest=10] [--minutes=480] [--seed=1] [--tick-ms=250] [--executors=2]
 *     [--json]
 *
 * Subset: the `--skip-hottest` functions with the most calls are left out. The 10 hottest (trace
 * rows 0–9, 5,753 to 273,379 calls each) make 91 % of the trace's calls (514,916 of 567,403) and
 * are never cold after their first call but once: 12 of the 475 hazard cold starts (seed 1), 10 of
 * the 1,353 fixed-10-min ones. Of the rest, in trace order, `--functions` evenly spaced ones (row
 * ⌊j × rest / N⌋ of the rest), all 240 by default: 52,487 calls, 109/s on average at F = 60.
 *
 * Time: one trace minute lasts 60 / F s; every arrival fires at its trace time / F (open loop, from
 * one timer chain, through `gateway.handle`); the deployed function sleeps its `duration_avg_ms` / F
 * (below 1 ms it returns at once); the policy's time parameters are divided by F (hazard: binMs,
 * rangeMs, coldStartCostMs, fallbackMs; fixed10: the 10 min), so the live run is the virtual one
 * shrunk. The autoscaler's own windows are not scaled: they act only while a function is busy.
 * F = 60 makes a 1-min bin 1 s, against the scheduler's reaction of a 250 ms tick plus a load report
 * (on change, ≤ 100 ms later); the full 480 min then take 8 min. `--minutes` replays a prefix.
 *
 * Cluster (test/support/in-process.ts): nats-server, gateway, scheduler with the scaled policy, one
 * worker with `--executors` real executor processes; functions deployed with memoryMb 16, so the
 * placer never has to evict (the virtual replay has unbounded room).
 *
 * Cold start (live): one request on `hearth.activate`, seen by a plain subscription (no queue group)
 * on a connection of our own: the gateway asks only when its routing table holds no executor for the
 * function, and concurrent cold requests of one gateway share one activation, as one busy period does
 * in the virtual replay; activations of one function less than 50 ms apart (the gateway's retries
 * when the executor it was given does not answer) count once. Activations that found a pool
 * assigned (a stale route) are counted apart. Pool-time (live): from the scheduler's first `assign` with isolates > 0 to its `assign 0`
 * (subscription on `hearth.worker.*.cmd`), minus the time requests were in flight, × F.
 *
 * To explain differences, each function's policy is wrapped (it only records) so the idle periods the
 * scheduler taught it can be set against the requests actually sent; the wrappers are matched to
 * functions by creation order (deploys go one at a time), and the match is checked against the
 * activations each policy saw.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { connectNats } from "../protocol/index.ts";
import {
  fixedKeepAlive,
  DEFAULT_HAZARD_OPTIONS as HAZARD,
  hazardHistogram,
  type KeepAlivePolicyFactory,
} from "../scheduler/index.ts";
import { get, outcomeOf, startInProcessCluster } from "../test/support/in-process.ts";
import {
  type FunctionResult,
  type FunctionTrace,
  loadTrace,
  type PolicyResult,
  replayFunction,
  summarize,
  TRACE,
  type Trace,
} from "./keepalive-replay.ts";

const MINUTE_MS = 60_000;
const POLICIES = ["hazard", "fixed10"] as const;
type PolicyName = (typeof POLICIES)[number];

/** Sleeps `?ms=` milliseconds: one bundle for every function, so executors fetch it once. */
const SLEEPER = `export default {
  async fetch(request) {
    const ms = Number(new URL(request.url).searchParams.get("ms"));
    if (ms >= 1) await new Promise((resolve) => setTimeout(resolve, ms));
    return new Response("ok");
  },
};`;

interface Options {
  readonly factor: number;
  readonly policy: PolicyName;
  /** How many of the functions left after the hottest are replayed, evenly spaced; undefined: all. */
  readonly functions: number | undefined;
  readonly skipHottest: number;
  readonly minutes: number;
  readonly seed: number;
  readonly tickMs: number;
  readonly executors: number;
  readonly json: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const num = (name: string, fallback: number, ok: (n: number) => boolean, must: string) => {
    const raw = arg(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!ok(n)) throw new Error(`--${name} must be ${must}, got ${raw}`);
    return n;
  };
  const positive = (n: number) => n > 0 && Number.isFinite(n);
  const count = (n: number) => Number.isInteger(n) && n >= 0;
  const policy = arg("policy") ?? "hazard";
  if (!(POLICIES as readonly string[]).includes(policy))
    throw new Error(`--policy must be one of ${POLICIES.join(", ")}, got ${policy}`);
  const functions = arg("functions") === undefined ? undefined : num("functions", 0, positive, "a count > 0");
  return Object.freeze({
    factor: num("factor", 60, positive, "a number > 0 (trace time ÷ wall time)"),
    policy: policy as PolicyName,
    functions,
    skipHottest: num("skip-hottest", 10, count, "an integer >= 0"),
    minutes: num("minutes", 480, (n) => Number.isInteger(n) && n > 0 && n <= 480, "an integer in 1..480"),
    seed: num("seed", 1, Number.isInteger, "an integer"),
    tickMs: num("tick-ms", 250, positive, "a number > 0"),
    executors: num("executors", 2, (n) => count(n) && n > 0, "an integer > 0"),
    json: argv.includes("--json"),
  });
}

/** The policy with every time parameter divided by `factor`. */
function scaledPolicy(name: PolicyName, factor: number): KeepAlivePolicyFactory {
  if (name === "fixed10") return fixedKeepAlive((10 * MINUTE_MS) / factor);
  return hazardHistogram({
    rangeMs: HAZARD.rangeMs / factor,
    binMs: HAZARD.binMs / factor,
    coldStartCostMs: HAZARD.coldStartCostMs / factor,
    fallbackMs: HAZARD.fallbackMs / factor,
  });
}

/** Trace rows replayed: all but the `skip` most called, then `count` evenly spaced ones, in trace order. */
function selectRows(trace: Trace, skip: number, count: number | undefined): number[] {
  const byCalls = trace.functions.map((fn, row) => ({ row, calls: fn.arrivals.length }));
  byCalls.sort((a, b) => b.calls - a.calls || a.row - b.row);
  const hottest = new Set(byCalls.slice(0, skip).map((f) => f.row));
  const rest = trace.functions.flatMap((_, row) => (hottest.has(row) ? [] : [row]));
  const n = Math.min(count ?? rest.length, rest.length);
  return Array.from({ length: n }, (_, j) => rest[Math.floor((j * rest.length) / n)] as number);
}

/** `rows` of the trace, cut at `minutes` and with time divided by `factor`. */
function subsetTrace(trace: Trace, rows: readonly number[], minutes: number, factor: number): Trace {
  const endMs = minutes * MINUTE_MS;
  const functions = rows.map((row): FunctionTrace => {
    const fn = trace.functions[row] as FunctionTrace;
    const arrivals = fn.arrivals.filter((t) => t < endMs).map((t) => t / factor);
    return { arrivals, durationMs: fn.durationMs / factor };
  });
  return { functions, endMs: endMs / factor };
}

interface LiveFunction {
  /** Activations, those within RETRY_MS of the previous one merged. */
  coldStarts: number;
  activations: number;
  /** Activations while a pool was assigned (the gateway's route was stale). */
  coldWithPool: number;
  poolLoads: number;
  preWarms: number;
  lastActivationMs: number;
  lastUnloadMs: number;
  isolates: Map<string, number>;
  poolFrom: number | null;
  pools: [number, number][];
  busy: [number, number][];
  invocations: number;
  /** When the last request was sent: a request is the first on its pool if none was sent since the load. */
  lastSentMs: number;
  sent: number[];
  activatedAt: number[];
}

/** What one function's policy was told, in ms of the replay's clock. */
interface PolicyTrace {
  readonly arrivals: number[];
  /** Idle periods it learnt: [observeIdle, the observeArrival that ended it]. */
  readonly learnt: [number, number][];
}

/**
 * Passes everything on and records what the policy was told, one trace per policy in creation order:
 * the scheduler creates them in the order it saw the records, which is our deploy order.
 */
function tracing(inner: KeepAlivePolicyFactory, traces: PolicyTrace[], clock: () => number): KeepAlivePolicyFactory {
  return () => {
    const policy = inner();
    const trace: PolicyTrace = { arrivals: [], learnt: [] };
    traces.push(trace);
    let idleSince: number | null = null;
    return {
      observeIdle(now) {
        idleSince = clock();
        policy.observeIdle(now);
      },
      observeArrival(now) {
        const at = clock();
        trace.arrivals.push(at);
        if (idleSince !== null) trace.learnt.push([idleSince, at]);
        idleSince = null;
        policy.observeArrival(now);
      },
      warmWindows: (since) => policy.warmWindows(since),
      shouldBeWarm: (now, since) => policy.shouldBeWarm(now, since),
      predictedNextArrivalMs: (now, since) => policy.predictedNextArrivalMs(now, since),
    };
  };
}

/** One request, for explaining the tail and the failures. */
interface RequestNote {
  readonly fn: string;
  /** Sent at, wall ms since the replay began. */
  readonly atMs: number;
  /** 1 for the function's first call. */
  readonly call: number;
  readonly ms: number;
  readonly outcome: string;
  /** Sent this long after the scheduler's load command for the pool (null: no pool assigned). */
  readonly afterLoadMs: number | null;
  /** Sent this long after the scheduler's last unload command for the function. */
  readonly afterUnloadMs: number;
  /** No earlier request was sent to this pool. */
  readonly firstOnPool: boolean;
}

interface LiveRun {
  readonly functions: readonly LiveFunction[];
  readonly endMs: number;
  readonly errors: ReadonlyMap<string, number>;
  readonly latenessMs: readonly number[];
  readonly latencyMs: readonly number[];
  readonly slowest: readonly RequestNote[];
  readonly failures: readonly RequestNote[];
  /** Per function (if the policies mapped onto the functions one to one), what its policy was told. */
  readonly policies: readonly PolicyTrace[];
  readonly setupMs: number;
}

/**
 * Activations of one function this close together are one cold start: a gateway asks again (up to 3
 * times) when the executor it was given does not answer. 50 ms is 3 s of trace at F = 60.
 */
const RETRY_MS = 50;
/** A load within this long after an activation of the function is that cold start's, not a pre-warm. */
const ACTIVATION_LOAD_MS = 1_000;

async function runLive(trace: Trace, names: readonly string[], options: Options): Promise<LiveRun> {
  const setupStarted = performance.now();
  const policies: PolicyTrace[] = [];
  let t0 = Number.POSITIVE_INFINITY;
  const clock = () => performance.now() - t0;
  const cluster = await startInProcessCluster({
    scheduler: {
      keepAlive: tracing(scaledPolicy(options.policy, options.factor), policies, clock),
      tickMs: options.tickMs,
    },
    worker: { executors: options.executors, executorEnv: { HEARTH_LOG_LEVEL: "error" } },
  });
  let observer: NatsConnection | null = null;
  try {
    // One at a time: the scheduler then creates the functions' policies in this order.
    for (const name of names) await cluster.hearth.deploy(name, { code: SLEEPER, memoryMb: 16 });
    const fns: LiveFunction[] = names.map(() => ({
      coldStarts: 0,
      activations: 0,
      coldWithPool: 0,
      poolLoads: 0,
      preWarms: 0,
      lastActivationMs: Number.NEGATIVE_INFINITY,
      lastUnloadMs: Number.NEGATIVE_INFINITY,
      isolates: new Map(),
      poolFrom: null,
      pools: [],
      busy: [],
      invocations: 0,
      lastSentMs: Number.NEGATIVE_INFINITY,
      sent: [],
      activatedAt: [],
    }));
    const index = new Map(names.map((name, i) => [name, i]));
    observer = await connectNats(cluster.nats.url, "keepalive-live-observer");
    observer.subscribe("hearth.activate", {
      callback: (err, msg) => {
        const fn = err ? undefined : fns[index.get(msg.json<{ name: string }>().name) ?? -1];
        if (!fn) return;
        const now = clock();
        fn.activations++;
        fn.activatedAt.push(now);
        if (now - fn.lastActivationMs > RETRY_MS) fn.coldStarts++;
        if (fn.poolFrom !== null) fn.coldWithPool++;
        fn.lastActivationMs = now;
      },
    });
    observer.subscribe("hearth.worker.*.cmd", {
      callback: (err, msg) => {
        const cmd = err ? null : msg.json<{ type: string; fn?: string; executor?: string; isolates?: number }>();
        const fn = fns[index.get(cmd?.fn ?? "") ?? -1];
        if (cmd?.type !== "assign" || !fn) return;
        fn.isolates.set(cmd.executor ?? "", cmd.isolates ?? 0);
        const total = [...fn.isolates.values()].reduce((s, n) => s + n, 0);
        const now = clock();
        if (total > 0 && fn.poolFrom === null) {
          fn.poolFrom = now;
          fn.poolLoads++;
          if (now - fn.lastActivationMs > ACTIVATION_LOAD_MS) fn.preWarms++;
        } else if (total === 0 && fn.poolFrom !== null) {
          fn.pools.push([fn.poolFrom, now]);
          fn.poolFrom = null;
          fn.lastUnloadMs = now;
        }
      },
    });
    await observer.flush();
    await sleep(1_000); // every record reached the scheduler's and the gateway's watches
    const setupMs = performance.now() - setupStarted;

    const events = trace.functions
      .flatMap((fn, i) => Array.from(fn.arrivals, (at) => ({ at, i })))
      .sort((a, b) => a.at - b.at);
    const errors = new Map<string, number>();
    const latenessMs: number[] = [];
    const latencyMs: number[] = [];
    const slowest: RequestNote[] = [];
    const failures: RequestNote[] = [];
    const inFlight = new Set<Promise<void>>();
    const fire = (i: number) => {
      const fn = fns[i] as LiveFunction;
      const durationMs = (trace.functions[i] as FunctionTrace).durationMs;
      const sent = clock();
      const call = ++fn.invocations;
      const afterLoadMs = fn.poolFrom === null ? null : Math.round(sent - fn.poolFrom);
      const firstOnPool = fn.poolFrom === null || fn.lastSentMs < fn.poolFrom;
      const afterUnloadMs = Math.round(sent - fn.lastUnloadMs);
      fn.lastSentMs = sent;
      fn.sent.push(sent);
      const done = cluster.gateway.handle(get(`/fn/${names[i]}?ms=${durationMs}`)).then(
        (res) => {
          const end = clock();
          fn.busy.push([sent, end]);
          latencyMs.push(end - sent);
          const outcome = outcomeOf(res);
          const ms = Math.round(end - sent);
          const note = {
            fn: names[i] ?? "",
            atMs: Math.round(sent),
            call,
            ms,
            outcome,
            afterLoadMs,
            afterUnloadMs,
            firstOnPool,
          };
          slowest.push(note);
          if (slowest.length > 40) slowest.sort((a, b) => b.ms - a.ms).splice(20);
          if (outcome === "OK") return;
          errors.set(outcome, (errors.get(outcome) ?? 0) + 1);
          failures.push(note);
        },
        (err: Error) => {
          errors.set(err.message, (errors.get(err.message) ?? 0) + 1);
        },
      );
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
      return sent;
    };
    t0 = performance.now();

    await new Promise<void>((resolve) => {
      let next = 0;
      const step = () => {
        while (next < events.length && (events[next]?.at ?? 0) <= clock()) {
          const event = events[next++] as { at: number; i: number };
          latenessMs.push(fire(event.i) - event.at);
        }
        if (next >= events.length) resolve();
        else setTimeout(step, Math.max(0, (events[next]?.at ?? 0) - clock()));
      };
      step();
    });
    await sleep(Math.max(0, trace.endMs - clock()));
    const endMs = clock();
    for (const fn of fns) if (fn.poolFrom !== null) fn.pools.push([fn.poolFrom, endMs]);
    await Promise.all(inFlight);
    slowest.sort((a, b) => b.ms - a.ms).splice(10);
    return { functions: fns, endMs, errors, latenessMs, latencyMs, slowest, failures, policies, setupMs };
  } finally {
    await observer?.close();
    await cluster.close();
  }
}

/** Pool-time inside [0, endMs] when no request of the function was in flight. */
function idlePoolMs(fn: LiveFunction, endMs: number): number {
  const busy = merge(fn.busy);
  let idle = 0;
  for (const [from, to] of fn.pools) {
    const lo = Math.max(0, from);
    const hi = Math.min(endMs, to);
    if (hi <= lo) continue;
    idle += hi - lo;
    for (const [b0, b1] of busy) idle -= Math.max(0, Math.min(hi, b1) - Math.max(lo, b0));
  }
  return idle;
}

function merge(intervals: readonly [number, number][]): [number, number][] {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [from, to] of sorted) {
    const last = merged.at(-1);
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

/** The last of ascending `times` at or before `t`. */
function lastAtOrBefore(times: readonly number[], t: number): number | undefined {
  let found: number | undefined;
  for (const x of times) {
    if (x > t) break;
    found = x;
  }
  return found;
}

/**
 * Idle periods the policy learnt that no new request ended: on the cold path the scheduler counts the
 * held request as an arrival, may see the function idle at a tick before the executor reports that
 * request, then counts the request again when the report shows it (a ~1-tick idle period).
 */
function doubleCounted(fn: LiveFunction, policy: PolicyTrace): number {
  let count = 0;
  for (const [idleAt, arrivalAt] of policy.learnt) {
    const activation = lastAtOrBefore(fn.activatedAt, idleAt);
    const request = lastAtOrBefore(fn.sent, arrivalAt);
    if (activation !== undefined && request !== undefined && request <= activation) count++;
  }
  return count;
}

/** Activations followed within 100 ms by an arrival at the policy taken for that function's. */
function matchedActivations(fn: LiveFunction, policy: PolicyTrace | undefined): number {
  return fn.activatedAt.filter((a) => policy?.arrivals.some((r) => r >= a - 5 && r <= a + 100)).length;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function quantile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function ratio(live: number, virtual: number): string {
  return virtual === 0 ? "–" : `${fmt(live / virtual, 3)} (${fmt((100 * (live - virtual)) / virtual, 1)} %)`;
}

function table(virtual: PolicyResult, live: PolicyResult): string {
  const q = (r: PolicyResult) =>
    `${fmt(r.perFunctionColdPct.p50, 1)} / ${fmt(r.perFunctionColdPct.p75, 1)} / ${fmt(r.perFunctionColdPct.p99, 1)}`;
  return [
    "| | virtual | live | live / virtual |",
    "|---|---|---|---|",
    `| cold starts | ${fmt(virtual.coldStarts)} | ${fmt(live.coldStarts)} | ${ratio(live.coldStarts, virtual.coldStarts)} |`,
    `| cold starts excl. first calls | ${fmt(virtual.coldStartsExclFirst)} | ${fmt(live.coldStartsExclFirst)} | ${ratio(live.coldStartsExclFirst, virtual.coldStartsExclFirst)} |`,
    `| per-function cold % p50 / p75 / p99 | ${q(virtual)} | ${q(live)} | p75 ${ratio(live.perFunctionColdPct.p75, virtual.perFunctionColdPct.p75)} |`,
    `| idle pool-h (trace time) | ${fmt(virtual.idlePoolHours, 1)} | ${fmt(live.idlePoolHours, 1)} | ${ratio(live.idlePoolHours, virtual.idlePoolHours)} |`,
  ].join("\n");
}

async function main(argv: readonly string[]): Promise<void> {
  const options = parseOptions(argv);
  const started = performance.now();
  const full = loadTrace(TRACE, options.seed);
  const rows = selectRows(full, options.skipHottest, options.functions);
  const names = rows.map((row) => `ka-${String(row).padStart(3, "0")}`);
  const subset = subsetTrace(full, rows, options.minutes, options.factor);
  const unscaled = subsetTrace(full, rows, options.minutes, 1);
  const policy = `${options.policy} ÷ ${options.factor}`;

  // A function not called in the replayed minutes is never loaded (the replay would integrate from -∞).
  const replayed = (fn: FunctionTrace, policy: KeepAlivePolicyFactory, endMs: number): FunctionResult =>
    fn.arrivals.length === 0 ? { invocations: 0, coldStarts: 0, idleWarmMs: 0 } : replayFunction(fn, policy, endMs);
  const virtualFns = subset.functions.map((fn) =>
    replayed(fn, scaledPolicy(options.policy, options.factor), subset.endMs),
  );
  // Scaled: idle ms are wall ms; × F gives trace ms, the unit summarize expects.
  const virtual = summarize(
    policy,
    virtualFns.map((r) => ({ ...r, idleWarmMs: r.idleWarmMs * options.factor })),
  );
  const check = summarize(
    policy,
    unscaled.functions.map((fn) => replayed(fn, scaledPolicy(options.policy, 1), unscaled.endMs)),
  );

  const run = await runLive(subset, names, options);
  const liveFns: FunctionResult[] = run.functions.map((fn) => ({
    invocations: fn.invocations,
    coldStarts: fn.coldStarts,
    idleWarmMs: idlePoolMs(fn, run.endMs) * options.factor,
  }));
  const live = summarize(policy, liveFns);
  const sum = (f: (fn: LiveFunction) => number) => run.functions.reduce((s, fn) => s + f(fn), 0);
  const differing = liveFns
    .map((r, i) => ({
      fn: names[i],
      invocations: r.invocations,
      virtual: virtualFns[i]?.coldStarts ?? 0,
      live: r.coldStarts,
    }))
    .filter((d) => d.virtual !== d.live)
    .sort((a, b) => Math.abs(b.live - b.virtual) - Math.abs(a.live - a.virtual));
  const doubled = run.functions.map((fn, i) => {
    const policy = run.policies[i];
    return policy ? doubleCounted(fn, policy) : 0;
  });
  const excessWhere = (pick: (i: number) => boolean) =>
    liveFns.reduce((s, r, i) => s + (pick(i) ? r.coldStarts - (virtualFns[i]?.coldStarts ?? 0) : 0), 0);
  const facts = {
    options,
    rows,
    invocations: sum((fn) => fn.invocations),
    wallSeconds: Math.round((performance.now() - started) / 1000),
    setupSeconds: Math.round(run.setupMs / 1000),
    replaySeconds: Math.round(run.endMs / 1000),
    errors: Object.fromEntries(run.errors),
    activations: sum((fn) => fn.activations),
    activationsWithPoolAssigned: sum((fn) => fn.coldWithPool),
    poolLoads: sum((fn) => fn.poolLoads),
    preWarms: sum((fn) => fn.preWarms),
    latenessMs: {
      p50: quantile(run.latenessMs, 0.5),
      p99: quantile(run.latenessMs, 0.99),
      max: quantile(run.latenessMs, 1),
    },
    latencyMs: {
      p50: quantile(run.latencyMs, 0.5),
      p99: quantile(run.latencyMs, 0.99),
      max: quantile(run.latencyMs, 1),
    },
    unscaledVirtualMatches:
      check.coldStarts === virtual.coldStarts && Math.abs(check.idlePoolHours - virtual.idlePoolHours) < 0.01,
    functionsDiffering: differing.length,
    policiesMatched: {
      activations: sum((fn) => fn.activations),
      matched: run.functions.reduce((s, fn, i) => s + matchedActivations(fn, run.policies[i]), 0),
    },
    doubleCounted: {
      idlePeriods: doubled.reduce((s, n) => s + n, 0),
      ofLearnt: run.policies.reduce((s, p) => s + p.learnt.length, 0),
      functions: doubled.filter((n) => n > 0).length,
      excessColdThere: excessWhere((i) => (doubled[i] ?? 0) > 0),
      excessColdElsewhere: excessWhere((i) => (doubled[i] ?? 0) === 0),
    },
    slowest: run.slowest,
    failures: run.failures,
  };
  if (options.json) {
    console.log(JSON.stringify({ ...facts, virtual, live, differing }, null, 2));
    return;
  }
  const minuteS = 60 / options.factor;
  console.log(
    `${rows.length} functions (all but the ${options.skipHottest} hottest${options.functions ? `, every ${fmt((full.functions.length - options.skipHottest) / rows.length, 2)}th` : ""}), ${options.minutes} trace min, seed ${options.seed}; ` +
      `F = ${options.factor}: 1 trace min = ${fmt(minuteS, 2)} s, policy ${options.policy} with times ÷ ${options.factor}, tick ${options.tickMs} ms, ${options.executors} executors\n`,
  );
  console.log(table(virtual, live));
  console.log(
    `\n${fmt(facts.invocations)} calls; errors ${JSON.stringify(facts.errors)}; send lateness p50 / p99 / max ${fmt(facts.latenessMs.p50, 1)} / ${fmt(facts.latenessMs.p99, 1)} / ${fmt(facts.latenessMs.max, 1)} ms; ` +
      `latency p50 / p99 / max ${fmt(facts.latencyMs.p50, 1)} / ${fmt(facts.latencyMs.p99, 1)} / ${fmt(facts.latencyMs.max, 1)} ms`,
  );
  console.log(
    `activations ${facts.activations}, of which with a pool already assigned ${facts.activationsWithPoolAssigned}; pool loads ${facts.poolLoads}, of which pre-warms ${facts.preWarms}; ` +
      `virtual unscaled = scaled: ${facts.unscaledVirtualMatches}`,
  );
  console.log(
    `functions whose cold starts differ: ${differing.length}; largest: ${differing
      .slice(0, 12)
      .map((d) => `${d.fn} (${d.invocations} calls) ${d.virtual}→${d.live}`)
      .join(", ")}`,
  );
  const d = facts.doubleCounted;
  console.log(
    `idle periods learnt that no new request ended (a cold request counted twice): ${d.idlePeriods} of ${d.ofLearnt}, in ${d.functions} functions; ` +
      `live − virtual cold starts there ${d.excessColdThere}, elsewhere ${d.excessColdElsewhere} ` +
      `(policies ↔ functions: ${facts.policiesMatched.matched} of ${facts.policiesMatched.activations} activations seen by the right policy)`,
  );
  const firstOnPool = run.failures.filter((f) => f.firstOnPool).length;
  console.log(`failed requests that were the first on their pool: ${firstOnPool} of ${run.failures.length}`);
  for (const f of run.failures.filter((f) => f.outcome !== "ERR_FUNCTION_CPU_TIME").concat(run.failures.slice(0, 5)))
    console.log(`  failed: ${JSON.stringify(f)}`);
  console.log(`slowest: ${JSON.stringify(run.slowest.slice(0, 3))}`);
  console.log(`\nrun ${facts.wallSeconds} s (setup ${facts.setupSeconds} s, replay ${facts.replaySeconds} s)`);
}

await main(process.argv.slice(2));
