/**
 * A Gateway in a process of its own for the cluster benchmarks, so the load generator does not share
 * its event loop. Unlike `hearth gateway` it takes a routing policy (BENCH_POLICY) and samples its
 * routing table on request. Spawned with an IPC channel by bench/cluster.ts; exits when it closes.
 *
 * IPC in:  { type: "sample", fn, everyMs } starts sampling `routes()[fn]`; { type: "stop-sample" } ends it.
 * IPC out: { type: "ready", url, pid }, then { type: "samples", samples } after each stop-sample, where
 * each sample maps executor id → requests this gateway has in flight there (Endpoint.local).
 */
import { Gateway } from "../gateway/index.ts";
import type { PolicyName } from "../gateway/routing/policies.ts";
import { connectNats, requireEnv } from "../protocol/index.ts";

type Command = { type: "sample"; fn: string; everyMs: number } | { type: "stop-sample" };

const nc = await connectNats(requireEnv(process.env, "NATS_URL"), "bench-gateway");
const gateway = new Gateway({
  nc,
  token: requireEnv(process.env, "HEARTH_TOKEN"),
  port: 0,
  ...(process.env.BENCH_POLICY ? { routingPolicy: process.env.BENCH_POLICY as PolicyName } : {}),
});
const url = await gateway.start();

let sampler: NodeJS.Timeout | null = null;
let samples: Record<string, number>[] = [];

process.on("message", (command: Command) => {
  if (command.type === "sample") {
    samples = [];
    const take = () => {
      const sample: Record<string, number> = {};
      for (const e of gateway.routes()[command.fn] ?? []) sample[e.executor] = e.local;
      samples.push(sample);
    };
    take();
    sampler = setInterval(take, command.everyMs);
  } else if (command.type === "stop-sample") {
    if (sampler) clearInterval(sampler);
    sampler = null;
    process.send?.({ type: "samples", samples });
  }
});
process.on("disconnect", () => {
  void (async () => {
    await gateway.close();
    await nc.close();
    process.exit(0);
  })();
});
process.send?.({ type: "ready", url, pid: process.pid });
