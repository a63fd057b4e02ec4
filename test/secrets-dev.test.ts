import { createHash, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUCKETS } from "../protocol/index.ts";
import { HearthClient } from "../sdk/index.ts";
import { type CliResult, type DevCluster, runCli, startDevCluster } from "./support/cli.ts";
import { connectToDevNats } from "./support/dev-nats.ts";
import { childPids } from "./support/proc.ts";

/**
 * Where a secret's value must never show up, checked by searching for it: every log line of a real
 * `hearth dev` at debug level (gateway, scheduler, worker, executors), the API's answers (error
 * bodies included), the raw bytes in the secrets bucket, the bundle, and the processes' environments
 * other than the executor's memory. The function proves it got the value by answering its SHA-256.
 */
const PLAINTEXT = `pt-${randomBytes(12).toString("hex")}`;
const VAULT = `export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/throw") throw new Error("vault failed on purpose");
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(env.DB_PASSWORD ?? ""));
    return Response.json({ sha256: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("") });
  },
};`;

let cluster: DevCluster;
let hearth: HearthClient;
/** Every answer the API gave in this test, bodies as text. */
const answers: string[] = [];

/** `hearth <args>` with `input` on its stdin (not a TTY: the CLI reads the value from it). */
function runCliWithInput(args: string[], input: string): Promise<CliResult> {
  return runCli(args, { HEARTH_URL: cluster.url, HEARTH_TOKEN: cluster.token }, input);
}

const cli = async (args: string[]) => {
  const result = await runCli(args, { HEARTH_URL: cluster.url, HEARTH_TOKEN: cluster.token });
  answers.push(result.stdout, result.stderr);
  return result;
};

async function api(
  method: "GET" | "PUT" | "POST",
  path: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  const res = await request(`${cluster.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${cluster.token}`, "content-type": "application/json" },
    body,
  });
  const text = await res.body.text();
  answers.push(text);
  return { status: res.statusCode, text };
}

function environ(pid: number | undefined): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}

beforeAll(async () => {
  cluster = await startDevCluster({ HEARTH_LOG_LEVEL: "debug", HEARTH_SECRETS_KEY: "" });
  hearth = new HearthClient({ url: cluster.url, token: cluster.token });
  await hearth.deploy("vault", { code: VAULT, env: { PLAIN: "p" } });
});

afterAll(async () => {
  await cluster?.stop();
});

describe("a secret's value under hearth dev at debug level", () => {
  it("reaches the function and appears in no log, answer, stored byte or other process", async () => {
    const put = await runCliWithInput(["secrets", "put", "vault", "DB_PASSWORD", "--json"], `${PLAINTEXT}\n`);
    answers.push(put.stdout, put.stderr);
    expect(put.code, put.stderr).toBe(0);
    expect(JSON.parse(put.stdout)).toMatchObject({ fn: "vault", name: "DB_PASSWORD", revision: expect.any(Number) });

    // The function got it (the trailing newline of the input dropped): it answers the value's hash.
    const expected = createHash("sha256").update(PLAINTEXT).digest("hex");
    const res = await hearth.invoke("vault");
    answers.push(res.text());
    expect(JSON.parse(res.text())).toEqual({ sha256: expected });

    // Listings show names and revisions only.
    const ls = await cli(["secrets", "ls", "vault"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+REVISION\s+UPDATED\nDB_PASSWORD\s+\d+\s+\d{4}-/);
    const lsJson = await cli(["secrets", "ls", "vault", "--json"]);
    expect(JSON.parse(lsJson.stdout).secrets).toEqual([
      { name: "DB_PASSWORD", revision: expect.any(Number), updatedAt: expect.any(String) },
    ]);
    expect((await api("GET", "/v1/functions/vault")).text).toContain('"secrets":{"DB_PASSWORD":');
    await api("GET", "/v1/functions");
    await api("GET", "/v1/functions/vault/secrets");

    // Error paths: the function throws; bodies that carry the value are refused without quoting it.
    const threw = await hearth.invoke("vault", { path: "/throw" });
    answers.push(threw.text());
    expect(threw.status).toBe(500);
    const badBodies = [`{"value": "${PLAINTEXT}`, PLAINTEXT, JSON.stringify({ value: PLAINTEXT, extra: true })];
    for (const body of badBodies)
      expect((await api("PUT", "/v1/functions/vault/secrets/OTHER", body)).status).toBe(400);
    const shadow = JSON.stringify({ value: PLAINTEXT });
    expect((await api("PUT", "/v1/functions/vault/secrets/PLAIN", shadow)).status).toBe(400);
    expect((await api("PUT", "/v1/functions/ghost/secrets/DB_PASSWORD", shadow)).status).toBe(404);
    expect((await api("PUT", "/v1/functions/vault/secrets/bad-name", shadow)).status).toBe(400);
    const reencrypt = await cli(["secrets", "reencrypt", "--json"]);
    expect(JSON.parse(reencrypt.stdout)).toEqual({ resealed: 0, current: 1, failed: [] });

    // At rest: ciphertext only, in the bucket and in the bundle.
    const nc = await connectToDevNats(cluster);
    try {
      const sealed = await (await new Kvm(nc).open(BUCKETS.secrets)).get("vault.DB_PASSWORD");
      expect(sealed?.string()).toMatch(/^\{"v":1,"kid":"[0-9a-f]{8}","iv":/);
      expect(Buffer.from(sealed?.value ?? []).includes(PLAINTEXT)).toBe(false);
      const info = await hearth.get("vault");
      const bundle = await (await new Objm(nc).open(BUCKETS.bundles)).getBlob(info.digest);
      expect(new TextDecoder().decode(bundle ?? undefined)).toContain("DB_PASSWORD");
      expect(new TextDecoder().decode(bundle ?? undefined)).not.toContain(PLAINTEXT);
    } finally {
      await nc.close();
    }

    // The key: saved beside the token (mode 0600), given to the gateway and the worker alone.
    const keyPath = join(cluster.home, "secrets-key");
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyPath, "utf8").trim();
    expect(environ(cluster.pids.gateway).HEARTH_SECRETS_KEY).toBe(key);
    expect(environ(cluster.pids["worker-1"]).HEARTH_SECRETS_KEY).toBe(key);
    expect(environ(cluster.pids.scheduler).HEARTH_SECRETS_KEY).toBeUndefined();
    const executors = childPids(cluster.pids["worker-1"] as number);
    expect(executors.length).toBeGreaterThan(0);
    for (const pid of executors) {
      const env = environ(pid);
      expect(env.HEARTH_SECRETS_KEY).toBeUndefined();
      expect(JSON.stringify(env)).not.toContain(PLAINTEXT);
    }

    // Removing it reloads the function without it.
    expect((await cli(["secrets", "rm", "vault", "DB_PASSWORD"])).code).toBe(0);
    const empty = createHash("sha256").update("").digest("hex");
    await expect.poll(async () => JSON.parse((await hearth.invoke("vault")).text()).sha256).toBe(empty);

    // Debug logging did log (the search below is not vacuous), and nowhere the value.
    const output = cluster.output();
    expect(output).toMatch(/"level":20/);
    expect(output).toContain("vault failed on purpose");
    for (const text of [output, ...answers]) expect(text).not.toContain(PLAINTEXT);
  });

  it("the CLI refuses an empty value and a missing name, and says so", async () => {
    const empty = await runCliWithInput(["secrets", "put", "vault", "EMPTY"], "");
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/the value is empty/);
    const missing = await cli(["secrets", "put", "vault"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'NAME'/);
    const unknown = await cli(["secrets", "shw", "vault"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'shw'/);
    const notFound = await cli(["secrets", "rm", "vault", "NOPE"]);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr).toMatch(/vault has no secret NOPE \[ERR_NOT_FOUND, HTTP 404\]/);
  });
});
