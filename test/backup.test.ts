import { randomBytes } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESTORE_PART_BYTES } from "../control/index.ts";
import {
  ASYNC_BUCKETS,
  BACKUP_FORMAT,
  type BackupItem,
  BUCKETS,
  CONTROL_STATE,
  FunctionStore,
  NamespaceStore,
  RUNTIME_STATE,
  readBackup,
  SecretKeyring,
  SecretStore,
  TokenStore,
  TriggerStore,
  VersionStore,
} from "../protocol/index.ts";
import type { HearthApiError } from "../sdk/index.ts";
import { type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

/**
 * `hearth backup` / `hearth restore` on in-process gateways (no worker: nothing here invokes; the
 * real-process round trip, where restored functions answer, is test/backup-dev.test.ts). Cluster A
 * holds the state; B starts empty and is where restores go.
 */
const keyring = SecretKeyring.fromEnv({ HEARTH_SECRETS_KEY: randomBytes(32).toString("base64") });
const SECRET = "s3cret-plaintext-value";
const CODE = (v: string) => `export default { fetch() { return new Response(${JSON.stringify(v)}); } };`;

let a: InProcessCluster;
let b: InProcessCluster;
let archive: Buffer;
let token: string;

async function bytesOf(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function itemsOf(bytes: Uint8Array): Promise<BackupItem[]> {
  const items: BackupItem[] = [];
  for await (const item of readBackup([bytes])) items.push(item);
  return items;
}

/** Every entry an archive carries, as `bucket/key` → bytes. */
function entriesOf(items: readonly BackupItem[]): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  for (const item of items) {
    if (item.t === "kv") entries.set(`${item.bucket}/${item.key}`, Buffer.from(item.value));
    if (item.t === "object") entries.set(`${item.bucket}/${item.name}`, Buffer.from(item.data));
  }
  return entries;
}

/** How many entries each control store of a cluster holds. */
async function storeCounts(nc: NatsConnection): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const store of CONTROL_STATE) {
    if (store.kind === "kv") {
      const kv = await new Kvm(nc).create(store.name, { history: store.history ?? 1 });
      let n = 0;
      for await (const _ of await kv.keys()) n++;
      counts[store.name] = n;
    } else counts[store.name] = (await (await new Objm(nc).create(store.name)).list()).length;
  }
  return counts;
}

const EMPTY = Object.fromEntries(CONTROL_STATE.map((s) => [s.name, 0]));

async function apiError(promise: Promise<unknown>): Promise<HearthApiError> {
  try {
    await promise;
  } catch (err) {
    return err as HearthApiError;
  }
  throw new Error("expected the call to fail");
}

/** Gzip'd NDJSON from lines, for hand-made archives. */
function archiveOf(lines: readonly unknown[]): Buffer {
  return gzipSync(lines.map((l) => `${JSON.stringify(l)}\n`).join(""));
}

beforeAll(async () => {
  [a, b] = await Promise.all([
    startInProcessCluster({ gateway: { secretsKeyring: keyring }, scheduler: false, worker: false }),
    startInProcessCluster({ gateway: { secretsKeyring: keyring }, scheduler: false, worker: false }),
  ]);
  const hearth = a.hearth;
  await hearth.createNamespace("team-a", { functions: 10 });
  await hearth.deploy("alpha", { code: CODE("alpha v1"), namespace: "team-a", message: "first" });
  await hearth.deploy("alpha", { code: CODE("alpha v2"), percent: 25, message: "canary" });
  await hearth.deploy("beta", { code: CODE("beta v1") });
  await hearth.putSecret("beta", "API_KEY", SECRET);
  await hearth.addTrigger("beta", { source: "nats://orders.created" });
  await (await jetstreamManager(a.nc)).streams.add({ name: "ORDERS", subjects: ["orders.paid.>"] });
  await hearth.addTrigger("beta", { source: "jetstream://ORDERS/orders.paid.>" });
  ({ token } = await hearth.createToken("ci", ["deploy:team-a"]));
  archive = await bytesOf(await hearth.backup());
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

describe("what a backup holds", () => {
  it("lists every Hearth bucket as control-plane or runtime state, once", () => {
    const all = [...Object.values(BUCKETS), ...Object.values(ASYNC_BUCKETS)].sort();
    const listed = [...CONTROL_STATE.map((s) => s.name), ...RUNTIME_STATE.map((r) => r.name)];
    expect(all.filter((name) => !listed.includes(name))).toEqual([]);
    expect(new Set(listed).size).toBe(listed.length);
  });

  it("creates each bucket with the history its store's open() uses", async () => {
    // Each store opened the way its process opens it; CONTROL_STATE must say the same.
    await Promise.all([
      FunctionStore.open(a.nc),
      VersionStore.open(a.nc),
      SecretStore.open(a.nc, null),
      TriggerStore.open(a.nc),
      TokenStore.open(a.nc),
      NamespaceStore.open(a.nc),
    ]);
    const jsm = await jetstreamManager(a.nc);
    for (const store of CONTROL_STATE) {
      const info = await jsm.streams.info(store.kind === "kv" ? `KV_${store.name}` : `OBJ_${store.name}`);
      if (store.kind === "kv")
        expect([store.name, info.config.max_msgs_per_subject]).toEqual([store.name, store.history]);
    }
  });

  it("starts with a manifest and carries every record, version, bundle, secret, trigger, token and namespace", async () => {
    const items = await itemsOf(archive);
    const manifest = items[0];
    expect(manifest?.t === "manifest" && manifest.manifest).toMatchObject({
      format: BACKUP_FORMAT,
      version: 1,
      buckets: CONTROL_STATE.map((s) => expect.objectContaining({ name: s.name, kind: s.kind })),
    });
    expect(manifest?.t === "manifest" && manifest.manifest.excluded.join("\n")).toMatch(/hearth_invocations/);
    const keys = [...entriesOf(items).keys()];
    expect(keys).toEqual(
      expect.arrayContaining([
        `${BUCKETS.functions}/alpha`,
        `${BUCKETS.functions}/beta`,
        `${BUCKETS.versions}/alpha.1`,
        `${BUCKETS.versions}/alpha.2`,
        `${BUCKETS.versions}/beta.1`,
        `${BUCKETS.secrets}/beta.API_KEY`,
        `${BUCKETS.namespaces}/team-a`,
      ]),
    );
    expect(keys.filter((k) => k.startsWith(`${BUCKETS.bundles}/`))).toHaveLength(3);
    expect(keys.filter((k) => k.startsWith(`${ASYNC_BUCKETS.triggers}/`))).toHaveLength(2);
    expect(keys.filter((k) => k.startsWith(`${BUCKETS.tokens}/`))).toHaveLength(1);
    const alpha = JSON.parse(entriesOf(items).get(`${BUCKETS.functions}/alpha`)?.toString() ?? "{}");
    expect(alpha).toMatchObject({ versionId: 1, canary: { id: 2, percent: 25 } });
    const end = items.at(-1);
    expect(end?.t).toBe("end");
  });

  it("holds secrets as ciphertext only: the plaintext is nowhere in the file, decoded or not", async () => {
    const text = gunzipSync(archive).toString("latin1");
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(Buffer.from(SECRET).toString("base64"));
    for (const [key, bytes] of entriesOf(await itemsOf(archive)))
      expect([key, bytes.includes(SECRET)]).toEqual([key, false]);
    const sealed =
      entriesOf(await itemsOf(archive))
        .get(`${BUCKETS.secrets}/beta.API_KEY`)
        ?.toString() ?? "";
    expect(keyring?.open("beta", "API_KEY", sealed)).toBe(SECRET);
  });

  it("holds tokens as SHA-256 hashes only: the token is nowhere in the file, decoded or not", async () => {
    const text = gunzipSync(archive).toString("latin1");
    expect(text).not.toContain(token);
    const entries = entriesOf(await itemsOf(archive));
    for (const [key, bytes] of entries) expect([key, bytes.includes(token)]).toEqual([key, false]);
    const record = [...entries].find(([key]) => key.startsWith(`${BUCKETS.tokens}/`))?.[1].toString() ?? "{}";
    expect(JSON.parse(record).sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is admin only", async () => {
    const res = await request(`${a.gateway.url}/v1/backup`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.statusCode).toBe(403);
    await res.body.text();
  });
});

describe("a restore checks the whole archive before it writes anything", () => {
  const json = () => gunzipSync(archive).toString("utf8").trimEnd().split("\n");
  const cases: [string, () => Buffer, RegExp][] = [
    ["a truncated file", () => archive.subarray(0, Math.floor(archive.length / 2)), /decompress|truncated|cut short/],
    [
      "a file with one byte flipped",
      () => {
        const copy = Buffer.from(archive);
        const at = Math.floor(copy.length * 0.6);
        copy[at] = (copy[at] as number) ^ 0xff;
        return copy;
      },
      /decompress|not JSON|SHA-256|base64|line/,
    ],
    [
      "a record changed and re-gzipped (gzip's CRC is then valid)",
      () => {
        const lines = json().map((line) => {
          const value = JSON.parse(line);
          if (value.bucket !== BUCKETS.functions) return line;
          const record = { ...JSON.parse(Buffer.from(value.value, "base64").toString()), minInstances: 50 };
          return JSON.stringify({ ...value, value: Buffer.from(JSON.stringify(record)).toString("base64") });
        });
        return gzipSync(`${lines.join("\n")}\n`);
      },
      /SHA-256/,
    ],
    ["a file without its end line", () => gzipSync(`${json().slice(0, -1).join("\n")}\n`), /without its end line/],
    ["an empty file", () => gzipSync(""), /empty/],
    ["a file that is not gzip", () => Buffer.from('{"format":"hearth-backup"}\n'), /decompress/],
    [
      "another format version",
      () =>
        archiveOf([
          { format: BACKUP_FORMAT, version: 2, buckets: [] },
          { t: "end", buckets: [], sha256: "" },
        ]),
      /format version 2/,
    ],
    [
      "an unknown bucket",
      () => archiveOf([{ format: BACKUP_FORMAT, version: 1, buckets: [{ name: "hearth_invocations", kind: "kv" }] }]),
      /unknown bucket "hearth_invocations"/,
    ],
  ];

  it.each(cases)("refuses %s and leaves the cluster empty", async (_, make, message) => {
    const err = await apiError(b.hearth.restore(make()));
    expect(err).toMatchObject({ status: 400, code: "ERR_BAD_REQUEST", message: expect.stringMatching(message) });
    expect(await storeCounts(b.nc)).toEqual(EMPTY);
  });

  it("refuses bad parts, unknown sessions and wrong methods", async () => {
    const headers = { authorization: `Bearer ${TEST_TOKEN}` };
    const call = async (method: "PUT" | "POST" | "GET" | "DELETE", path: string, body?: Buffer) => {
      const res = await request(`${b.gateway.url}${path}`, { method, headers, body });
      return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string }; id?: string } };
    };
    const { body } = await call("POST", "/v1/restore");
    const id = body.id as string;
    expect(await call("PUT", `/v1/restore/${id}/parts/1`, Buffer.from("x"))).toMatchObject({ status: 400 });
    expect(await call("PUT", `/v1/restore/${id}/parts/0`, Buffer.alloc(0))).toMatchObject({ status: 400 });
    expect(await call("PUT", `/v1/restore/${id}/parts/0`, Buffer.alloc(RESTORE_PART_BYTES + 1))).toMatchObject({
      status: 400,
    });
    expect(await call("POST", `/v1/restore/${id}/commit`)).toMatchObject({ status: 400 });
    expect(await call("GET", `/v1/restore/${id}/commit`)).toMatchObject({ status: 405 });
    expect(await call("POST", "/v1/backup")).toMatchObject({ status: 405 });
    expect(await call("GET", "/v1/restore")).toMatchObject({ status: 405 });
    expect(await call("DELETE", `/v1/restore/${id}`)).toMatchObject({ status: 200 });
    expect(await call("PUT", `/v1/restore/${id}/parts/0`, Buffer.from("x"))).toMatchObject({
      status: 404,
      body: { error: { code: "ERR_NOT_FOUND" } },
    });
    expect(await call("POST", "/v1/restore/nonsense")).toMatchObject({ status: 404 });
    expect(await storeCounts(b.nc)).toEqual(EMPTY);
  });
});

describe("restore", () => {
  it("brings every entry back byte for byte, in parts, and makes jetstream:// triggers' consumers", async () => {
    // The application's stream exists in the new cluster (it is the application's, not in the backup).
    const jsm = await jetstreamManager(b.nc);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.paid.>"] });
    // Parts far smaller than the default, so this small archive goes up in several.
    const parts: number[] = [];
    const report = await b.hearth.restore(archive, { partBytes: 1024, onPart: (sent) => parts.push(sent) });
    expect(parts).toEqual(
      [...Array(Math.ceil(archive.length / 1024)).keys()].map((i) => Math.min((i + 1) * 1024, archive.length)),
    );
    expect(parts.length).toBeGreaterThan(1);
    expect(report.warnings).toEqual([]);
    expect(report.buckets.find((x) => x.name === BUCKETS.functions)?.entries).toBe(2);
    const restored = entriesOf(await itemsOf(await bytesOf(await b.hearth.backup())));
    expect(restored).toEqual(entriesOf(await itemsOf(archive)));
    const trigger = (await b.hearth.triggers("beta")).find((t) => t.source.startsWith("jetstream://"));
    expect(await jsm.consumers.info("ORDERS", `hearth_trigger_${trigger?.id}`)).toMatchObject({
      config: { filter_subject: "orders.paid.>" },
    });
    // The restoring gateway serves the restored state: records, versions, deployment, tokens.
    expect(await b.hearth.deployment("alpha")).toMatchObject({
      versions: expect.arrayContaining([expect.objectContaining({ id: 2, percent: 25 })]),
    });
    await expect
      .poll(
        async () =>
          (await request(`${b.gateway.url}/v1/functions/alpha`, { headers: { authorization: `Bearer ${token}` } }))
            .statusCode,
      )
      .toBe(200);
  });

  it("refuses a cluster that has functions, and writes nothing", async () => {
    const before = await storeCounts(b.nc);
    const err = await apiError(b.hearth.restore(archive));
    expect(err).toMatchObject({ status: 409, code: "ERR_CLUSTER_NOT_EMPTY", message: expect.stringMatching(/alpha/) });
    expect(await storeCounts(b.nc)).toEqual(before);
  });

  it("with force, overwrites what the archive carries, keeps the rest, and warns of a missing stream", async () => {
    await b.hearth.deploy("alpha", { code: CODE("alpha changed"), percent: 100 });
    await b.hearth.deploy("gamma", { code: CODE("gamma") });
    await (await jetstreamManager(b.nc)).streams.delete("ORDERS");
    const report = await b.hearth.restore(archive, { force: true });
    expect(report.warnings).toEqual([expect.stringMatching(/reads stream ORDERS, which this cluster does not have/)]);
    const alphaBefore = entriesOf(await itemsOf(archive))
      .get(`${BUCKETS.functions}/alpha`)
      ?.toString();
    expect(JSON.stringify(await (await FunctionStore.open(b.nc)).get("alpha"))).toBe(alphaBefore);
    expect((await b.hearth.get("gamma")).name).toBe("gamma");
  });
});
