import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectNats, FunctionStore, VersionStore } from "../protocol/index.ts";
import { type NatsServer, startNatsServer } from "../sdk/index.ts";
import { Deployer } from "./deployer.ts";

let nats: NatsServer;
let nc: NatsConnection;
let store: FunctionStore;
let versions: VersionStore;
let deployer: Deployer;

beforeAll(async () => {
  nats = await startNatsServer({});
  nc = await connectNats(nats.url, "deployer-test");
  store = await FunctionStore.open(nc);
  versions = await VersionStore.open(nc);
  deployer = new Deployer({ store, versions, onChange: () => {}, keepVersions: 3 });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

const bundleOf = (text: string) => new TextEncoder().encode(`/* ${text} */`);
const deploy = (fn: string, text: string, percent?: number) =>
  deployer.deploy(
    fn,
    { code: text, filename: "x.js", limits: {}, settings: {}, ...(percent ? { percent } : {}) },
    bundleOf(text),
  );

const idsOf = async (fn: string) => (await versions.list(fn)).map((v) => v.id).sort((a, b) => a - b);

it("keeps the newest versions and those serving, and deletes bundles no kept version or function uses", async () => {
  const [d1, d2] = [(await deploy("pruned", "v1")).record.digest, (await deploy("pruned", "v2")).record.digest];
  await deployer.rollback("pruned", 1);
  // Canaries beside version 1: it serves, so it outlives pruning however old it is.
  for (const text of ["v3", "v4", "v5"]) await deploy("pruned", text, 10);
  expect(await idsOf("pruned")).toEqual([1, 3, 4, 5]);
  expect(await store.getBundle(d2)).toBeNull();
  expect(await store.getBundle(d1)).not.toBeNull();

  await deployer.setDeployment("pruned", [{ id: 5, percent: 100 }]);
  expect(await idsOf("pruned")).toEqual([3, 4, 5]);
  expect(await store.getBundle(d1)).toBeNull();

  // A bundle another function also runs stays when the version that used it here goes.
  const shared = (await deploy("other", "shared")).record.digest;
  for (const text of ["shared", "v7", "v8", "v9"]) await deploy("pruned", text);
  expect(await idsOf("pruned")).toEqual([7, 8, 9]);
  expect(await store.getBundle(shared)).not.toBeNull();

  await deployer.remove("pruned");
  expect(await idsOf("pruned")).toEqual([]);
  expect(await store.getBundle((await store.get("other"))?.digest as string)).not.toBeNull();
});

const bytes = (text: string) => new TextEncoder().encode(text);
/** Keeps one version, so a replaced version's map is collected at once. */
const keepingOne = () => new Deployer({ store, versions, onChange: () => {}, keepVersions: 1 });
const deployMapped = (fn: string, code: string, map?: string) =>
  keepingOne().deploy(
    fn,
    { code, filename: "x.js", limits: {}, settings: {} },
    bytes(`/* ${code} */`),
    map ? bytes(map) : undefined,
  );
const text = (stored: Uint8Array | null) => (stored ? new TextDecoder().decode(stored) : null);

it("stores a version's source map beside its bundle, makes a new version when only the map changes, and collects it with the bundle", async () => {
  const first = await deployMapped("mapped", "v1", '{"version":3,"sources":["a.ts"],"mappings":""}');
  const mapDigest = first.record.sourceMapDigest as string;
  expect(mapDigest).toBe(FunctionStore.digestOf(bytes('{"version":3,"sources":["a.ts"],"mappings":""}')));
  expect(first.version?.sourceMapDigest).toBe(mapDigest);
  expect(text(await store.getBundle(mapDigest))).toContain('"a.ts"');

  // The same code and map again: nothing changes.
  expect((await deployMapped("mapped", "v1", '{"version":3,"sources":["a.ts"],"mappings":""}')).version).toBeNull();

  // The same code with another map is another version: the version hash covers the map.
  const remapped = await deployMapped("mapped", "v1", '{"version":3,"sources":["b.ts"],"mappings":""}');
  expect(remapped.version?.id).toBe(2);
  expect(remapped.record.version).not.toBe(first.record.version);
  expect(remapped.changes).toEqual([
    { field: "sourceMap", from: mapDigest.slice(0, 12), to: remapped.record.sourceMapDigest?.slice(0, 12) },
  ]);
  // Version 1 was pruned (one is kept) and nothing uses its map any more.
  expect(await store.getBundle(mapDigest)).toBeNull();

  // Without a map: a version without one, and the last map goes with the version that had it.
  const plain = await deployMapped("mapped", "v1");
  expect(plain.record.sourceMapDigest).toBeUndefined();
  expect(plain.changes).toEqual([{ field: "sourceMap", from: remapped.record.sourceMapDigest?.slice(0, 12) }]);
  expect(await store.getBundle(remapped.record.sourceMapDigest as string)).toBeNull();

  const again = await deployMapped("mapped", "v2", '{"version":3,"sources":["c.ts"],"mappings":""}');
  await keepingOne().remove("mapped");
  expect(await store.getBundle(again.record.sourceMapDigest as string)).toBeNull();
});
