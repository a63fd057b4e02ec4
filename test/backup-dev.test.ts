import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { HearthClient } from "../sdk/index.ts";
import { type DevCluster, runCli, startDevCluster } from "./support/cli.ts";
import { type Sink, startSink } from "./support/sink.ts";

/**
 * The backup round trip on real `hearth dev` clusters, through the CLI: state made on one cluster,
 * backed up, the cluster stopped and its NATS data folder deleted, a fresh cluster started with the
 * same HEARTH_SECRETS_KEY, the backup restored, and everything answers as before.
 */
const SECRET = `sk-${randomBytes(12).toString("hex")}`;
const env = { HEARTH_SECRETS_KEY: randomBytes(32).toString("base64"), HEARTH_EGRESS_ALLOW: "127.0.0.1" };
const work = mkdtempSync(join(tmpdir(), "hearth-backup-"));
const file = join(work, "cluster.backup");
let sink: Sink;
let first: DevCluster | null = null;
let second: DevCluster | null = null;

const greeter = (v: string) => `export default { fetch() { return new Response(${JSON.stringify(v)}); } };`;
/** Answers with the SHA-256 of its secret (proof it has it); its queue() reports each message to the sink. */
const vault = (sinkUrl: string) => `export default {
  async fetch(_r, env) {
    const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(env.API_KEY));
    return new Response([...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join(""));
  },
  async queue(batch) {
    for (const m of batch.messages) await fetch(${JSON.stringify(`${sinkUrl}/posted`)}, { method: "POST", body: String(m.body) });
  },
};`;

afterAll(async () => {
  await first?.stop();
  await second?.stop();
  await sink?.close();
  rmSync(work, { recursive: true, force: true });
});

/** What a cluster shows of its state, to compare before and after. */
async function stateOf(hearth: HearthClient) {
  const versions = async (fn: string) => (await hearth.versions(fn)).map((v) => [v.id, v.version]);
  return {
    functions: (await hearth.list()).map((f) => [f.name, f.versionId, f.version, f.namespace ?? "default", f.access]),
    greeterVersions: await versions("greeter"),
    vaultVersions: await versions("vault"),
    deployment: await hearth.deployment("greeter"),
    namespaces: (await hearth.namespaces()).map((n) => n.name).sort(),
    triggers: (await hearth.triggers()).map((t) => [t.id, t.function, t.source]),
  };
}

/** Invokes until it answers 200 (a cold start after the restore), returning the body. */
async function answer(hearth: HearthClient, fn: string, token?: string): Promise<string> {
  let last = "";
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(100)) {
    const res = await hearth.invoke(fn, token ? { token } : {});
    if (res.status === 200) return res.text();
    last = `${res.status} ${res.text()}`;
  }
  throw new Error(`${fn} never answered 200; last: ${last}`);
}

/** Invokes until both versions of a canary deployment answered. */
async function bothVersions(hearth: HearthClient): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < 200 && seen.size < 2; i++) seen.add(await answer(hearth, "greeter"));
  return [...seen].sort();
}

/** Publishes as the application until the trigger's function reports a message. */
async function triggerFires(cluster: DevCluster, tag: string): Promise<void> {
  const printed = new URL(cluster.appNatsUrl ?? "");
  const app: NatsConnection = await connect({
    servers: printed.host,
    user: decodeURIComponent(printed.username),
    pass: decodeURIComponent(printed.password),
  });
  try {
    // Core NATS keeps nothing for a subject no worker reads yet: publish until one arrives.
    for (let i = 0; !sink.bodies("posted").some((b) => b.startsWith(tag)); i++) {
      if (i > 150) throw new Error(`the trigger never fired\n${cluster.output()}`);
      app.publish("orders.created", `${tag}-${i}`);
      await sleep(200);
    }
  } finally {
    await app.close();
  }
}

describe("hearth backup and hearth restore", () => {
  it("bring a destroyed cluster back: functions, versions, canary, secrets, token, namespace, trigger", async () => {
    sink = await startSink();
    first = await startDevCluster(env);
    const cli1 = { HEARTH_URL: first.url, HEARTH_TOKEN: first.token };
    const one = new HearthClient({ url: first.url, token: first.token });
    await one.createNamespace("team-a", { functions: 5 });
    await one.deploy("greeter", { code: greeter("greeter v1"), namespace: "team-a" });
    await one.deploy("greeter", { code: greeter("greeter v2"), percent: 50, message: "canary" });
    await one.deploy("vault", { code: vault(sink.url), access: "private" });
    await one.putSecret("vault", "API_KEY", SECRET);
    await one.addTrigger("vault", { source: "nats://orders.created" });
    const { token } = await one.createToken("invoker", ["invoke:default"]);
    const hash = createHash("sha256").update(SECRET).digest("hex");
    expect(await answer(one, "vault", token)).toBe(hash);
    expect(await bothVersions(one)).toEqual(["greeter v1", "greeter v2"]);
    await triggerFires(first, "before");
    const before = await stateOf(one);

    const backedUp = await runCli(["backup", file], cli1);
    expect(backedUp, backedUp.stderr).toMatchObject({ code: 0 });
    expect(backedUp.stdout).toMatch(/Backup written to/);
    expect(existsSync(`${file}.partial`)).toBe(false);

    // Stop it and destroy its NATS data (the whole HEARTH_HOME goes with stop()).
    const home = first.home;
    expect(existsSync(join(home, "nats"))).toBe(true);
    expect((await first.stop()).code).toBe(0);
    const firstOutput = first.output();
    first = null;
    expect(existsSync(home)).toBe(false);

    second = await startDevCluster(env);
    const cli2 = { HEARTH_URL: second.url, HEARTH_TOKEN: second.token };
    const two = new HearthClient({ url: second.url, token: second.token });
    expect(await two.list()).toEqual([]);
    const restored = await runCli(["restore", file], cli2);
    expect(restored, restored.stderr).toMatchObject({ code: 0 });
    expect(restored.stdout).toMatch(/Restored/);

    expect(await stateOf(two)).toEqual(before);
    expect(await answer(two, "vault", token)).toBe(hash);
    expect((await two.invoke("vault")).status).toBe(401); // still private: the token is what lets it in
    expect(await bothVersions(two)).toEqual(["greeter v1", "greeter v2"]);
    await triggerFires(second, "after");

    // A second restore meets a cluster with functions: refused, with the way out named.
    const again = await runCli(["restore", file], cli2);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/ERR_CLUSTER_NOT_EMPTY/);
    expect(again.stderr).toMatch(/--force/);
    for (const output of [firstOutput, second.output()]) expect(output).not.toMatch(/Permissions Violation/);
  }, 180_000);

  it("refuses a file that is not a backup before sending it", async () => {
    const bad = join(work, "bad.backup");
    writeFileSync(bad, "not a backup");
    const res = await runCli(["restore", bad], { HEARTH_URL: "http://127.0.0.1:9", HEARTH_TOKEN: "x" });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/Not a valid Hearth backup: it does not decompress/);
  });
});
