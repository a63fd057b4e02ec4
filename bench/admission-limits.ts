/**
 * What the admission limits cost on the invocation hot path, per call of AdmissionLimits.admit():
 * a function without a rate limit (no namespace quotas anywhere, and with quotas on another
 * namespace), and one with a limit that is never reached. In process, no NATS: admit() never
 * touches the connection. `node bench/admission-limits.ts`
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { AdmissionLimits } from "../gateway/admission-limits/index.ts";
import type { FunctionRecord, NamespaceStore } from "../protocol/index.ts";

const record = {
  name: "hello",
  namespace: "default",
  versionId: 1,
  digest: "d",
  bundleBytes: 1,
  version: "v",
  env: {},
  memoryMb: 128,
  timeoutMs: 1000,
  cpuMs: 50,
  concurrency: 32,
  maxBodyBytes: 1024,
  createdAt: "",
  updatedAt: "",
} satisfies FunctionRecord;
const limited: FunctionRecord = { ...record, rateLimit: { requests: 1_000_000_000, periodSeconds: 60 } };

function measure(label: string, limits: AdmissionLimits, fn: FunctionRecord, calls = 5_000_000): void {
  for (let i = 0; i < 100_000; i++) limits.admit(fn, true); // warm up
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) limits.admit(fn, true);
  const ns = Number(process.hrtime.bigint() - started) / calls;
  console.log(`${label.padEnd(48)} ${(ns / 1000).toFixed(4)} µs/op`);
}

// Neither is used: start() (subscriptions, the namespaces watch) is never called here.
const nc = {} as NatsConnection;
const namespaces = {} as NamespaceStore;
const plain = new AdmissionLimits({ nc, gatewayId: "bench", namespaceOf: () => "default", namespaces });
measure("no rate limit, no namespace quotas", plain, record);
const quotasElsewhere = new AdmissionLimits({ nc, gatewayId: "bench", namespaceOf: () => "default", namespaces });
quotasElsewhere.quotas.set("other", { invocationsPerMinute: 10 });
measure("no rate limit, quotas on another namespace", quotasElsewhere, record);
measure("rate limit (under it)", plain, limited, 1_000_000);
