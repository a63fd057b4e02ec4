import { type NatsConnection, nuid } from "@nats-io/transport-node";
import { encodeInvocation, parseLoadReport, SUBJECTS } from "../protocol/index.ts";
import { connectToDevNats } from "../test/support/dev-nats.ts";
import { cpuMicros } from "../test/support/proc.ts";

/**
 * The runtime alone: invocations sent straight to a function's NATS subject (no gateway), 64 in
 * flight, for `seconds`; reports the executor's CPU per invocation (receive → isolate → reply).
 */
export async function measureRuntimeOnly(
  cluster: { natsUrl: string; home: string },
  record: { name: string; version: string },
  executorPids: number[],
  seconds: number,
): Promise<{ invocations: number; perSecond: number; executorCpuMicrosPerInvocation: number }> {
  // As the gateway: `hearth dev`'s nats-server refuses anonymous clients.
  const nc = await connectToDevNats(cluster);
  const head = { method: "GET", url: "http://127.0.0.1/", headers: [["host", "127.0.0.1"]] as Array<[string, string]> };
  const empty = new Uint8Array(0);
  const subject = await subjectOf(nc, record.name);
  const call = () =>
    nc.request(subject, empty, {
      headers: encodeInvocation(nuid.next(), record.version, head),
      timeout: 10_000,
    });
  for (let i = 0; i < 2_000; i++) await call();
  const before = cpuMicros(executorPids);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let invocations = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < deadline) {
        await call();
        invocations++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const used = cpuMicros(executorPids) - before;
  await nc.close();
  return {
    invocations,
    perSecond: Math.round(invocations / elapsed),
    executorCpuMicrosPerInvocation: Number((used / invocations).toFixed(1)),
  };
}

/** The invocation subject of an executor holding `fn`, from the next load report that shows one. */
async function subjectOf(nc: NatsConnection, fn: string): Promise<string> {
  const sub = nc.subscribe(SUBJECTS.load);
  for await (const msg of sub) {
    const report = parseLoadReport(msg.data);
    if (report?.functions.some((f) => f.name === fn)) {
      sub.unsubscribe();
      return SUBJECTS.invoke(report.executor, fn);
    }
  }
  throw new Error(`no executor reported ${fn}`);
}
