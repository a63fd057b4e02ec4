import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { createGzip } from "node:zlib";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupManifest,
  type BucketCount,
  backupLine,
  CONTROL_STATE,
  type ControlStore,
  OBJECT_CHUNK_BYTES,
  RUNTIME_STATE,
} from "../protocol/index.ts";

/** The version of Hearth that wrote an archive, from package.json: shown to whoever restores it. */
export const HEARTH_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/**
 * The whole control-plane state (CONTROL_STATE) as a backup archive (protocol/backup-format.ts),
 * gzip'd, produced as the stores are read: one pass, one bundle in memory at a time, and a slow
 * reader slows the reading (the stream's backpressure). Each KV entry is its current value when read:
 * a deploy landing during the backup may or may not be in it, whole (see docs/backup.md).
 */
export function writeBackup(nc: NatsConnection, now: Date = new Date()): AsyncIterable<Uint8Array> {
  const source = Readable.from(backupLines(nc, now), { objectMode: false });
  const gzip = source.pipe(createGzip());
  // An error reading a store ends the archive early, without its end line: readers refuse it.
  source.once("error", (err) => gzip.destroy(err));
  return gzip;
}

async function* backupLines(nc: NatsConnection, now: Date): AsyncGenerator<Buffer> {
  const digest = createHash("sha256");
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    createdAt: now.toISOString(),
    hearthVersion: HEARTH_VERSION,
    buckets: CONTROL_STATE,
    excluded: RUNTIME_STATE.map((r) => `${r.name}: ${r.why}`),
  };
  yield backupLine(manifest, digest);
  const counts: BucketCount[] = [];
  for (const store of CONTROL_STATE) {
    const count = { name: store.name, kind: store.kind, entries: 0, bytes: 0 };
    const lines = store.kind === "kv" ? kvLines(nc, store) : objectLines(nc, store);
    for await (const { line, bytes } of lines) {
      if (bytes !== null) {
        count.entries++;
        count.bytes += bytes;
      }
      yield backupLine(line, digest);
    }
    counts.push(count);
  }
  yield Buffer.from(`${JSON.stringify({ t: "end", buckets: counts, sha256: digest.digest("hex") })}\n`);
}

/** A line to write, and the bytes of the entry it completes (null: not the end of an entry). */
type Line = { readonly line: unknown; readonly bytes: number | null };

async function* kvLines(nc: NatsConnection, store: ControlStore): AsyncGenerator<Line> {
  // Created as its store's open() would: a store never used yet is backed up empty.
  const kv = await new Kvm(nc).create(store.name, { history: store.history ?? 1 });
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  for (const key of keys.sort()) {
    const entry = await kv.get(key);
    if (entry?.operation !== "PUT") continue; // deleted since it was listed
    const value = Buffer.from(entry.value);
    yield { line: { t: "kv", bucket: store.name, key, value: value.toString("base64") }, bytes: value.length };
  }
}

async function* objectLines(nc: NatsConnection, store: ControlStore): AsyncGenerator<Line> {
  const objects = await new Objm(nc).create(store.name);
  const infos = (await objects.list()).filter((info) => !info.deleted);
  for (const info of infos.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const data = await objects.getBlob(info.name);
    if (data === null) continue; // deleted since it was listed
    const chunks = Math.ceil(data.length / OBJECT_CHUNK_BYTES);
    const sha256 = createHash("sha256").update(data).digest("hex");
    const head = { t: "object", bucket: store.name, name: info.name, size: data.length, sha256, chunks };
    yield { line: head, bytes: chunks === 0 ? 0 : null };
    for (let index = 0; index < chunks; index++) {
      const part = Buffer.from(data.buffer, data.byteOffset + index * OBJECT_CHUNK_BYTES, chunkLength(data, index));
      const line = { t: "chunk", bucket: store.name, name: info.name, index, data: part.toString("base64") };
      yield { line, bytes: index === chunks - 1 ? data.length : null };
    }
  }
}

function chunkLength(data: Uint8Array, index: number): number {
  return Math.min(OBJECT_CHUNK_BYTES, data.length - index * OBJECT_CHUNK_BYTES);
}
