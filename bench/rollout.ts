/**
 * Versions under load, on a real `hearth dev` (gateway, scheduler, worker, executor processes):
 *
 * 1. Rollback lag: while 32 clients call a function non-stop, the deployment is switched between
 *    two versions (rollback, then rollback again) BENCH_SWITCHES times (default 20). For each
 *    switch: how long the command took, and how long after it returned the last response from the
 *    version it replaced arrived (0 when none did). Target: p99 ≤ 1 s.
 * 2. Canary split: 10,000 requests against a 10 % canary; how many the canary served (target
 *    1,000 ± 120), over BENCH_ROUNDS rounds.
 *
 * `node bench/rollout.ts`; part "rollout" of `npm run bench`. Writes bench/results/rollout-<time>.{json,md}.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { buildBundle, HearthClient } from "../sdk/index.ts";
import { startDevCluster } from "../test/support/cli.ts";
import { median, percentile, saveResults, sleep, spread } from "./stats.ts";

const SWITCHES = Number(process.env.BENCH_SWITCHES ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = 32;

export interface RolloutResult {
  readonly commandMs: { p50: number; p99: number };
  readonly lagMs: { p50: number; p99: number; max: number };
  readonly canaryServed: readonly number[];
}

export async function runRollout(): Promise<RolloutResult> {
  const dir = mkdtempSync(join(tmpdir(), "hearth-rollout-"));
  const cluster = await startDevCluster();
  const dispatcher = new Agent({ connections: CLIENTS });
  try {
    const entry = join(dir, "v.ts");
    writeFileSync(entry, "export default { fetch: (req, env) => new Response(env.V) };");
    const { code, filename } = await buildBundle(entry);
    const hearth = new HearthClient({ url: cluster.url, token: cluster.token });
    const call = async (fn: string): Promise<string> => {
      const res = await request(`${cluster.url}/fn/${fn}`, { dispatcher });
      return res.body.text();
    };

    // 1. Rollback lag under load.
    await hearth.deploy("roll", { code, filename, env: { V: "1" } });
    await hearth.deploy("roll", { code, filename, env: { V: "2" } });
    for (let i = 0; i < 200; i++) await call("roll"); // warm both the route and the pool
    const responses: { at: number; body: string }[] = [];
    let running = true;
    const load = Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (running) responses.push({ body: await call("roll"), at: performance.now() });
      }),
    );
    const commandMs: number[] = [];
    const lagMs: number[] = [];
    for (let i = 0; i < SWITCHES; i++) {
      await sleep(300);
      const before = (await hearth.deployment("roll")).versions[0]?.id;
      const start = performance.now();
      await hearth.rollback("roll");
      const returned = performance.now();
      commandMs.push(returned - start);
      // Let any straggler arrive, then find the last answer from the version replaced.
      await sleep(1_500);
      const old = responses.filter((r) => r.at > returned && r.body === String(before)).map((r) => r.at);
      lagMs.push(old.length > 0 ? Math.max(...old) - returned : 0);
      responses.length = 0;
    }
    running = false;
    await load;

    // 2. Canary split.
    const canaryServed: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const fn = `split-${round}`;
      await hearth.deploy(fn, { code, filename, env: { V: "old" } });
      await hearth.deploy(fn, { code, filename, env: { V: "new" }, percent: 10 });
      let next = 0;
      let served = 0;
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (next++ < 10_000) if ((await call(fn)) === "new") served++;
        }),
      );
      canaryServed.push(served);
    }
    return {
      commandMs: { p50: median(commandMs), p99: percentile(commandMs, 99) },
      lagMs: { p50: median(lagMs), p99: percentile(lagMs, 99), max: Math.max(...lagMs) },
      canaryServed,
    };
  } finally {
    await dispatcher.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The report's lines (markdown). */
export function describeRollout(result: RolloutResult): string {
  return [
    `- rollback command: p50 ${result.commandMs.p50.toFixed(1)} ms, p99 ${result.commandMs.p99.toFixed(1)} ms`,
    `- last response from the replaced version after the command returned: p50 ${result.lagMs.p50.toFixed(1)} ms, ` +
      `p99 ${result.lagMs.p99.toFixed(1)} ms, max ${result.lagMs.max.toFixed(1)} ms (${SWITCHES} switches, ${CLIENTS} clients; target p99 ≤ 1,000 ms)`,
    `- 10 % canary over 10,000 requests served: ${spread(result.canaryServed, 0)} (target 1,000 ± 120)`,
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runRollout();
  const markdown = describeRollout(result);
  saveResults("rollout", result, markdown);
  console.log(markdown);
}
