import { ASYNC_BUCKETS, STREAMS } from "./async.ts";
import { LOG_STREAM } from "./logs.ts";
import { BUCKETS } from "./subjects.ts";

/** One store of control-plane state, with the options its store's `open()` creates it with. */
export interface ControlStore {
  readonly name: string;
  readonly kind: "kv" | "objects";
  /** KV history (revisions kept per key); absent for object stores. */
  readonly history?: number;
  /** What it holds, for the backup manifest and docs/backup.md. */
  readonly holds: string;
}

/**
 * Everything the control plane keeps, in one list: what `hearth backup` writes and `hearth restore`
 * brings back, in this order. The order is the restore order: what a record names is written before
 * the record (bundles before the versions that name them, versions and secrets before the function
 * records that serve them), so a watcher that sees a restored function finds all it needs. The
 * options match each store's `open()` (test/backup.test.ts holds them to it): a restore into an empty
 * cluster creates the buckets exactly as a first deploy would.
 */
export const CONTROL_STATE: readonly ControlStore[] = [
  { name: BUCKETS.bundles, kind: "objects", holds: "bundles (classic-script JS) by sha256" },
  { name: BUCKETS.namespaces, kind: "kv", history: 1, holds: "namespaces and their quotas" },
  { name: BUCKETS.tokens, kind: "kv", history: 1, holds: "API tokens: id, name, scopes and SHA-256, never the token" },
  {
    name: BUCKETS.secrets,
    kind: "kv",
    history: 1,
    holds: "secrets, sealed (AES-256-GCM): useless without HEARTH_SECRETS_KEY",
  },
  { name: BUCKETS.versions, kind: "kv", history: 1, holds: "every kept version of every function" },
  { name: ASYNC_BUCKETS.triggers, kind: "kv", history: 1, holds: "event triggers" },
  { name: BUCKETS.functions, kind: "kv", history: 5, holds: "function records: settings and deployment" },
];

/**
 * What Hearth keeps that a backup leaves out, and why: runtime state, rebuilt or refilled by a running
 * cluster, or not the control plane's to restore. Named in every backup's manifest.
 */
export const RUNTIME_STATE: readonly { readonly name: string; readonly why: string }[] = [
  { name: BUCKETS.leader, why: "the scheduler leader lease: a new cluster elects its own" },
  { name: ASYNC_BUCKETS.invocations, why: "async invocation statuses (24 h)" },
  { name: ASYNC_BUCKETS.idempotency, why: "Idempotency-Key claims (24 h)" },
  { name: ASYNC_BUCKETS.results, why: "async invocation results (24 h)" },
  { name: STREAMS.async, why: "queued async invocations" },
  { name: STREAMS.triggers, why: "queued trigger events" },
  { name: STREAMS.deadLetters, why: "dead letters" },
  { name: LOG_STREAM, why: "function logs" },
  { name: "user streams", why: "the streams jetstream:// triggers read are the application's: back them up yourself" },
];
