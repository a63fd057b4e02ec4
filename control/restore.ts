import type { JetStreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  ASYNC_BUCKETS,
  type BackupManifest,
  type BucketCount,
  type FunctionStore,
  HearthError,
  type Logger,
  readBackup,
  type TriggerRecord,
} from "../protocol/index.ts";
import { DEFAULT_ACK_WAIT_MS, ensureConsumer } from "../runtime/queue/pull-loop.ts";
import { triggerConsumerSpec } from "../runtime/queue/queue-consumers.ts";

export interface RestoreDeps {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly store: FunctionStore;
  readonly log: Logger;
}

export interface RestoreOptions {
  /** Restore into a cluster that has functions: keys the archive carries are overwritten, others left. */
  readonly force?: boolean;
}

/** What a restore did. */
export interface RestoreReport {
  readonly createdAt: string;
  readonly hearthVersion: string;
  readonly buckets: readonly BucketCount[];
  /** Things the operator must see to: a jetstream:// trigger whose stream is not in this cluster. */
  readonly warnings: readonly string[];
}

/**
 * Brings an archive back: it is read through once and checked whole (protocol/backup-format.ts)
 * before anything is written, so a corrupt or truncated file changes nothing; then the cluster must
 * have no function (unless `force`); then it is read again and written, store by store in
 * CONTROL_STATE order, function records last. `archive` is called once per pass.
 *
 * Written records reach the gateways, schedulers and workers through their watches, as a deploy
 * does. A jetstream:// trigger's durable consumer on the application's stream is made by the control
 * plane when the trigger is created (control/triggers-api.ts), so it is made here too: without it,
 * messages published while the function is cold would be missed.
 */
export async function restoreBackup(
  archive: () => AsyncIterable<Uint8Array>,
  options: RestoreOptions,
  deps: RestoreDeps,
): Promise<RestoreReport> {
  let manifest: BackupManifest | null = null;
  let counts: readonly BucketCount[] = [];
  for await (const item of readBackup(archive())) {
    if (item.t === "manifest") manifest = item.manifest;
    if (item.t === "end") counts = item.end.buckets;
    // Every control-plane KV value is JSON: one that is not would fail a reader after the restore.
    if (item.t === "kv") parseJson(item.value, `${item.bucket} key ${item.key}`);
  }
  if (!manifest) throw new HearthError("ERR_BAD_REQUEST", "Not a valid Hearth backup: no manifest");
  if (!options.force) {
    const existing = await deps.store.list();
    if (existing.length > 0) {
      const names = existing.map((r) => r.name);
      throw new HearthError(
        "ERR_CLUSTER_NOT_EMPTY",
        `This cluster already has ${names.length} function(s) (${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""}): restore into an empty cluster, or pass --force to overwrite what the backup carries and keep the rest`,
      );
    }
  }
  const kvs = new Map<string, KV>();
  const objects = new Map<string, ObjectStore>();
  for (const store of manifest.buckets) {
    if (store.kind === "kv")
      kvs.set(store.name, await new Kvm(deps.nc).create(store.name, { history: store.history ?? 1 }));
    else objects.set(store.name, await new Objm(deps.nc).create(store.name));
  }
  const triggers: TriggerRecord[] = [];
  for await (const item of readBackup(archive())) {
    if (item.t === "kv") {
      await (kvs.get(item.bucket) as KV).put(item.key, item.value);
      if (item.bucket === ASYNC_BUCKETS.triggers) triggers.push(parseJson(item.value, item.key) as TriggerRecord);
    } else if (item.t === "object") {
      await (objects.get(item.bucket) as ObjectStore).putBlob({ name: item.name }, item.data);
    }
  }
  const warnings = await ensureTriggerConsumers(triggers, deps);
  deps.log.info({ buckets: counts, warnings, createdAt: manifest.createdAt }, "backup restored");
  return { createdAt: manifest.createdAt, hearthVersion: manifest.hearthVersion, buckets: counts, warnings };
}

async function ensureTriggerConsumers(triggers: readonly TriggerRecord[], deps: RestoreDeps): Promise<string[]> {
  const warnings: string[] = [];
  for (const trigger of triggers) {
    const source = trigger.source;
    if (source.kind !== "jetstream") continue;
    if (!(await deps.jsm.streams.info(source.stream).catch(() => null))) {
      warnings.push(
        `Trigger ${trigger.id} of ${trigger.function} reads stream ${source.stream}, which this cluster does not have: create it, then remove and re-add the trigger`,
      );
      continue;
    }
    await ensureConsumer(deps.jsm, triggerConsumerSpec(trigger, source.stream, source.subject, DEFAULT_ACK_WAIT_MS));
  }
  return warnings;
}

function parseJson(value: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(value).toString("utf8"));
  } catch {
    throw new HearthError("ERR_BAD_REQUEST", `Not a valid Hearth backup: the value of ${what} is not JSON`);
  }
}
