/**
 * The backup archive (`hearth backup`, docs/backup.md): gzip'd NDJSON, one JSON object per line, all
 * ASCII. A manifest line first, then the entries of each store in CONTROL_STATE order, then an end
 * line with the counts and the SHA-256 of every line before it. The digest and counts are at the end,
 * not in the manifest, so the archive can be written as the stores are read, in one pass (a tar
 * stream or a zip's central directory put their index last for the same reason); a file cut short
 * has no end line, and is refused.
 *
 * Lines after the manifest, by `t`:
 * - `kv`: `{t, bucket, key, value}`: a KV entry's current value, base64 (byte-exact); deleted keys are absent;
 * - `object`: `{t, bucket, name, size, sha256, chunks}`, then `chunks` lines
 *   `{t: "chunk", bucket, name, index, data}` of at most OBJECT_CHUNK_BYTES each, base64;
 * - `end`: `{t, buckets: [{name, kind, entries, bytes}], sha256}`.
 */
import { createHash, type Hash } from "node:crypto";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { CONTROL_STATE, type ControlStore } from "./control-state.ts";
import { HearthError } from "./errors.ts";

export const BACKUP_FORMAT = "hearth-backup";
export const BACKUP_VERSION = 1;
/** Raw bytes per object chunk line: 1 MiB is ~1.4 MB of base64, so no line is large to hold. */
export const OBJECT_CHUNK_BYTES = 1024 * 1024;
/** A longer line is not one this format writes: the file is corrupt (a reader never buffers more). */
const MAX_LINE_BYTES = 2 * 1024 * 1024;
/** NATS KV keys: `[-/_=.a-zA-Z0-9]`, not starting or ending with a dot. */
const KV_KEY = /^[-/_=.a-zA-Z0-9]+$/;

export interface BackupManifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: typeof BACKUP_VERSION;
  readonly createdAt: string;
  readonly hearthVersion: string;
  /** The stores it carries, in order, with the options a restore creates them with. */
  readonly buckets: readonly ControlStore[];
  /** What a backup leaves out (runtime state), for whoever reads the file. */
  readonly excluded: readonly string[];
}

/** How much of one store an archive holds. */
export interface BucketCount {
  readonly name: string;
  readonly kind: ControlStore["kind"];
  readonly entries: number;
  /** Value bytes (KV) or object bytes, decoded. */
  readonly bytes: number;
}

export interface BackupEnd {
  readonly t: "end";
  readonly buckets: readonly BucketCount[];
  /** SHA-256 (hex) of every byte before the end line, manifest included. */
  readonly sha256: string;
}

/** What reading an archive yields, each item checked; the end line is checked last. */
export type BackupItem =
  | { readonly t: "manifest"; readonly manifest: BackupManifest }
  | { readonly t: "kv"; readonly bucket: string; readonly key: string; readonly value: Uint8Array }
  | { readonly t: "object"; readonly bucket: string; readonly name: string; readonly data: Uint8Array }
  | { readonly t: "end"; readonly end: BackupEnd };

/** One archive line's bytes (JSON and a newline), folded into the running digest by the writer. */
export function backupLine(value: unknown, digest: Hash): Buffer {
  const line = Buffer.from(`${JSON.stringify(value)}\n`);
  digest.update(line);
  return line;
}

function corrupt(message: string): HearthError {
  return new HearthError("ERR_BAD_REQUEST", `Not a valid Hearth backup: ${message}`);
}

/**
 * Reads a gzip'd archive and yields its manifest, each KV entry and each whole object, checking as it
 * goes: the gzip stream (its CRC-32), the manifest's format and version, every store known and of its
 * kind, sections in CONTROL_STATE order, keys, base64, each object's size and SHA-256, and at the end
 * the counts and the SHA-256 of the whole. Throws ERR_BAD_REQUEST naming the first fault. Items are
 * yielded before the end is checked: read the archive through once before acting on any of it.
 */
export async function* readBackup(
  gzipped: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<BackupItem> {
  const digest = createHash("sha256");
  const counts = new Map<string, { entries: number; bytes: number }>();
  let manifest: BackupManifest | null = null;
  let order = 0;
  let object: { bucket: string; name: string; size: number; sha256: string; chunks: Buffer[]; left: number } | null =
    null;
  let ended = false;
  let lineNo = 0;
  for await (const line of splitLines(gunzip(gzipped))) {
    lineNo++;
    const at = `line ${lineNo}`;
    if (ended) throw corrupt(`${at}: data after the end line`);
    const value = parseLine(line, at);
    if (manifest === null) {
      manifest = parseManifest(value);
      for (const store of manifest.buckets) counts.set(store.name, { entries: 0, bytes: 0 });
      digest.update(line);
      yield { t: "manifest", manifest };
      continue;
    }
    if (value.t === "end") {
      if (object) throw corrupt(`${at}: object ${object.name} has ${object.left} chunk(s) missing`);
      const end = checkEnd(value, digest.digest("hex"), manifest, counts);
      ended = true;
      yield { t: "end", end };
      continue;
    }
    digest.update(line);
    const bucket = str(value.bucket, `${at}: bucket`);
    const index = manifest.buckets.findIndex((b) => b.name === bucket);
    if (index < 0) throw corrupt(`${at}: bucket ${bucket} is not in the manifest`);
    if (index < order) throw corrupt(`${at}: bucket ${bucket} out of order`);
    order = index;
    const store = manifest.buckets[index] as ControlStore;
    const count = counts.get(bucket) as { entries: number; bytes: number };
    if (object && value.t !== "chunk")
      throw corrupt(`${at}: object ${object.name} has ${object.left} chunk(s) missing`);
    if (value.t === "kv" && store.kind === "kv") {
      const key = str(value.key, `${at}: key`);
      if (!KV_KEY.test(key) || key.startsWith(".") || key.endsWith(".")) throw corrupt(`${at}: bad key ${key}`);
      const bytes = base64(value.value, `${at}: value`);
      count.entries++;
      count.bytes += bytes.length;
      yield { t: "kv", bucket, key, value: bytes };
    } else if (value.t === "object" && store.kind === "objects") {
      const size = value.size;
      const chunks = value.chunks;
      if (!Number.isSafeInteger(size) || (size as number) < 0) throw corrupt(`${at}: bad size`);
      if (!Number.isSafeInteger(chunks) || (chunks as number) !== Math.ceil((size as number) / OBJECT_CHUNK_BYTES))
        throw corrupt(`${at}: bad chunk count`);
      object = {
        bucket,
        name: str(value.name, `${at}: name`),
        size: size as number,
        sha256: str(value.sha256, `${at}: sha256`),
        chunks: [],
        left: chunks as number,
      };
    } else if (value.t === "chunk" && object && object.bucket === bucket && value.name === object.name) {
      if (value.index !== object.chunks.length) throw corrupt(`${at}: chunk ${String(value.index)} out of order`);
      object.chunks.push(base64(value.data, `${at}: data`));
      object.left--;
    } else throw corrupt(`${at}: unexpected ${JSON.stringify(value.t)} line in ${store.kind} bucket ${bucket}`);
    if (object && object.left === 0) {
      const data = Buffer.concat(object.chunks);
      if (data.length !== object.size || createHash("sha256").update(data).digest("hex") !== object.sha256)
        throw corrupt(`${at}: object ${object.name} does not match its size and SHA-256`);
      count.entries++;
      count.bytes += data.length;
      const whole = { t: "object" as const, bucket, name: object.name, data };
      object = null;
      yield whole;
    }
  }
  if (manifest === null) throw corrupt("it is empty");
  if (!ended) throw corrupt(`it ends after line ${lineNo} without its end line (truncated?)`);
}

function parseManifest(value: Record<string, unknown>): BackupManifest {
  if (value.format !== BACKUP_FORMAT) throw corrupt(`the first line is not a ${BACKUP_FORMAT} manifest`);
  if (value.version !== BACKUP_VERSION)
    throw corrupt(`format version ${JSON.stringify(value.version)}; this Hearth reads version ${BACKUP_VERSION}`);
  if (!Array.isArray(value.buckets)) throw corrupt("the manifest lists no buckets");
  const seen = new Set<string>();
  const buckets = value.buckets.map((b: unknown) => {
    const name = (b as { name?: unknown } | null)?.name;
    const known = CONTROL_STATE.find((s) => s.name === name);
    if (!known) throw corrupt(`unknown bucket ${JSON.stringify(name)}`);
    if ((b as { kind?: unknown }).kind !== known.kind)
      throw corrupt(`bucket ${known.name} is not a ${known.kind} store`);
    if (seen.has(known.name)) throw corrupt(`bucket ${known.name} is listed twice`);
    seen.add(known.name);
    return known;
  });
  return {
    format: BACKUP_FORMAT,
    version: BACKUP_VERSION,
    createdAt: String(value.createdAt),
    hearthVersion: String(value.hearthVersion),
    buckets,
    excluded: Array.isArray(value.excluded) ? value.excluded.map(String) : [],
  };
}

function checkEnd(
  value: Record<string, unknown>,
  actual: string,
  manifest: BackupManifest,
  counts: Map<string, { entries: number; bytes: number }>,
): BackupEnd {
  if (value.sha256 !== actual) throw corrupt("its SHA-256 does not match its contents");
  const buckets = manifest.buckets.map((store) => ({ name: store.name, kind: store.kind, ...counts.get(store.name) }));
  const said = Array.isArray(value.buckets) ? value.buckets : [];
  for (const b of buckets) {
    const claim = said.find((s: { name?: unknown }) => s?.name === b.name) as Partial<BucketCount> | undefined;
    if (claim?.entries !== b.entries || claim?.bytes !== b.bytes)
      throw corrupt(`bucket ${b.name} holds ${b.entries} entries, its end line says ${String(claim?.entries)}`);
  }
  return { t: "end", buckets: buckets as BucketCount[], sha256: actual };
}

function parseLine(line: Buffer, at: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line.toString("utf8"));
  } catch {
    throw corrupt(`${at} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw corrupt(`${at} is not an object`);
  return value as Record<string, unknown>;
}

function str(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "") throw corrupt(`${what} is missing`);
  return value;
}

function base64(value: unknown, what: string): Buffer {
  if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0)
    throw corrupt(`${what} is not base64`);
  return Buffer.from(value, "base64");
}

async function* gunzip(gzipped: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer> {
  const source = Readable.from(gzipped, { objectMode: false });
  const inflate = source.pipe(createGunzip());
  source.once("error", (err) => inflate.destroy(err));
  try {
    for await (const chunk of inflate) yield chunk as Buffer;
  } catch (err) {
    if (err instanceof HearthError) throw err;
    throw corrupt(`it does not decompress (${(err as Error).message})`);
  } finally {
    source.destroy();
    inflate.destroy();
  }
}

/** Lines with their newline, as Buffers; a line longer than MAX_LINE_BYTES is refused. */
async function* splitLines(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      pending.push(chunk.subarray(start, nl + 1));
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) throw corrupt(`a line is over ${MAX_LINE_BYTES} bytes`);
    }
  }
  if (pendingBytes > 0) throw corrupt("its last line is cut short (truncated?)");
}
