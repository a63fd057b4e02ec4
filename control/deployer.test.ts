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
