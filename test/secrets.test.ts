import { randomBytes } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import { pino } from "pino";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Gateway } from "../gateway/index.ts";
import { BUCKETS, LIMITS, SecretKeyring } from "../protocol/index.ts";
import { HearthApiError, HearthClient } from "../sdk/index.ts";
import { type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

/**
 * Secrets end to end on one process's gateway, scheduler and worker (the executors are real child
 * processes, the nats-server real): the API, the function reading `env.NAME`, reloads on a change,
 * the checks, and a key rotation with re-encryption.
 */
const keyText = () => randomBytes(32).toString("base64");
const keyringOf = (current: string, previous?: string) => {
  const keyring = SecretKeyring.fromEnv({
    HEARTH_SECRETS_KEY: current,
    ...(previous ? { HEARTH_SECRETS_PREVIOUS_KEY: previous } : {}),
  });
  if (!keyring) throw new Error("no keyring");
  return keyring;
};
const READS_ENV = `export default { fetch(_r, env) { return Response.json({ api: env.API_KEY ?? null, plain: env.PLAIN ?? null }); } };`;

/** After a worker is replaced, a call may first meet the old one's route, and a failing load takes the scheduler's 3 s wait. */
const RESTART_POLL = { timeout: 15_000, interval: 100 };
const oldKey = keyText();
let cluster: InProcessCluster;
let hearth: HearthClient;
/** What the worker logged, at debug level: searched for plaintext and for the reasons of failed loads. */
const workerLog: string[] = [];
const captureLog = (lines: string[]) => pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });

async function apiError(call: Promise<unknown>): Promise<HearthApiError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HearthApiError)) throw new Error(`expected an API error, got ${String(err)}`);
  return err;
}

async function seen(fn: string): Promise<{ api: string | null; plain: string | null }> {
  const res = await hearth.invoke(fn);
  if (res.status !== 200) return { api: `HTTP ${res.status} ${res.text()}`, plain: null };
  return JSON.parse(res.text());
}

/** A raw control request, for bodies the client would never send. */
async function raw(method: "PUT" | "POST" | "GET", path: string, body?: string) {
  const res = await request(`${cluster.gateway.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
    body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, error: JSON.parse(text).error as { code: string; message: string } };
}

beforeAll(async () => {
  const keyring = keyringOf(oldKey);
  cluster = await startInProcessCluster({
    gateway: { secretsKeyring: keyring },
    // Short enough that a load no worker can do fails within the test.
    scheduler: { waitForNodeMs: 3_000 },
    worker: { secretsKeyring: keyring, log: captureLog(workerLog) },
  });
  hearth = cluster.hearth;
  await hearth.deploy("sec", { code: READS_ENV, env: { PLAIN: "plain-value" } });
});

afterAll(async () => {
  await cluster?.close();
});

describe("secrets API", () => {
  it("puts, lists and removes a secret; the function reads it as env.NAME and reloads on each change", async () => {
    const deployed = await hearth.get("sec");
    expect(await seen("sec")).toEqual({ api: null, plain: "plain-value" });

    const first = await hearth.putSecret("sec", "API_KEY", "first-value");
    expect(first.version).not.toBe(deployed.version);
    const info = await hearth.get("sec");
    expect(info.secrets).toEqual({ API_KEY: first.revision });
    expect(JSON.stringify(info)).not.toContain("first-value");
    const listed = await hearth.secrets("sec");
    expect(listed).toEqual([{ name: "API_KEY", revision: first.revision, updatedAt: expect.any(String) }]);
    expect(Date.now() - Date.parse(listed[0]?.updatedAt ?? "")).toBeLessThan(60_000);
    expect(await seen("sec")).toEqual({ api: "first-value", plain: "plain-value" });

    const second = await hearth.putSecret("sec", "API_KEY", "second-value");
    expect(second.revision).toBeGreaterThan(first.revision);
    expect(second.version).not.toBe(first.version);
    await expect.poll(() => seen("sec")).toEqual({ api: "second-value", plain: "plain-value" });

    await hearth.removeSecret("sec", "API_KEY");
    expect(await hearth.secrets("sec")).toEqual([]);
    expect((await hearth.get("sec")).secrets).toBeUndefined();
    await expect.poll(() => seen("sec")).toEqual({ api: null, plain: "plain-value" });
    // Removed means removed: a second rm is a 404, and no ciphertext is left in the bucket.
    expect(await apiError(hearth.removeSecret("sec", "API_KEY"))).toMatchObject({ status: 404, code: "ERR_NOT_FOUND" });
    const kv = await new Kvm(cluster.nc).open(BUCKETS.secrets);
    expect((await kv.get("sec.API_KEY"))?.operation).toBe("PURGE");
    const history: string[] = [];
    for await (const entry of await kv.history({ key: "sec.API_KEY" })) history.push(entry.operation);
    expect(history).toEqual(["PURGE"]);
  });

  it("stores only ciphertext, bound to its function and name", async () => {
    const { revision } = await hearth.putSecret("sec", "STORED", "stored-plaintext");
    const kv = await new Kvm(cluster.nc).open(BUCKETS.secrets);
    const entry = await kv.get("sec.STORED");
    expect(entry?.revision).toBe(revision);
    const sealed = entry?.string() ?? "";
    expect(sealed).not.toContain("stored-plaintext");
    expect(JSON.parse(sealed)).toMatchObject({ v: 1, kid: keyringOf(oldKey).current.id });

    // Copied to another function's key, it does not open there: that function fails to load, saying why.
    await hearth.deploy("cold", { code: READS_ENV });
    await hearth.putSecret("cold", "API_KEY", "placeholder");
    await kv.put("cold.API_KEY", sealed);
    const cold = await hearth.invoke("cold");
    expect(cold.status).toBe(500);
    expect(JSON.parse(cold.text()).error).toMatchObject({
      code: "ERR_SECRET_CORRUPT",
      message: expect.stringMatching(/Secret API_KEY of cold cannot be opened: it fails authentication/),
    });
    expect(cold.text()).not.toContain("stored-plaintext");

    // Copied to another name of a warm function: its new version cannot load, so it keeps serving the
    // one it has, and the worker logs why.
    await hearth.putSecret("sec", "COPY", "placeholder");
    await kv.put("sec.COPY", sealed);
    await hearth.putSecret("sec", "OTHER", "x");
    await expect
      .poll(() =>
        workerLog.some((line) => line.includes("Secret COPY of sec cannot be opened: it fails authentication")),
      )
      .toBe(true);
    expect(await seen("sec")).toEqual({ api: null, plain: "plain-value" });

    for (const name of ["STORED", "COPY", "OTHER"]) await hearth.removeSecret("sec", name);
    await hearth.removeSecret("cold", "API_KEY");
    await hearth.remove("cold");
    expect(workerLog.join("\n")).not.toContain("stored-plaintext");
  });

  it("answers 404 for a function that is not deployed", async () => {
    for (const call of [hearth.putSecret("nope", "A", "v"), hearth.secrets("nope"), hearth.removeSecret("nope", "A")]) {
      expect(await apiError(call)).toMatchObject({ status: 404, code: "ERR_FUNCTION_NOT_FOUND" });
    }
  });

  it("refuses bad names, bad bodies and other methods, never quoting the value", async () => {
    for (const name of ["1ABC", "HAS-DASH", "a.b", "SPACE D", "x".repeat(256)]) {
      const err = await apiError(hearth.putSecret("sec", name, "v"));
      expect(err).toMatchObject({ status: 400, code: "ERR_BAD_REQUEST" });
      expect(err.message).toMatch(/must match/);
    }
    expect(await apiError(hearth.putSecret("Bad_Fn", "A", "v"))).toMatchObject({ code: "ERR_INVALID_NAME" });
    const path = "/v1/functions/sec/secrets/API_KEY";
    const cases: [string, RegExp][] = [
      ['{"value": "leaky-value', /not valid JSON/],
      ["leaky-value", /not valid JSON/],
      ['{"value": 42}', /must be \{ "value"/],
      ['["leaky-value"]', /must be \{ "value"/],
      ['{"value": "leaky-value", "extra": 1}', /only "value"/],
      [JSON.stringify({ value: `leaky-value${"x".repeat(LIMITS.maxEnvValueBytes)}` }), /at most 5120 bytes/],
    ];
    for (const [body, message] of cases) {
      const res = await raw("PUT", path, body);
      expect(res.status).toBe(400);
      expect(res.error.message).toMatch(message);
      expect(res.text).not.toContain("leaky-value");
    }
    expect((await raw("POST", path, "{}")).status).toBe(405);
    expect((await raw("PUT", "/v1/functions/sec/secrets", "{}")).status).toBe(405);
    expect((await raw("GET", "/v1/secrets/reencrypt")).status).toBe(405);
    expect(await hearth.secrets("sec")).toEqual([]);
  });

  it("keeps a secret from shadowing a plain variable, and a deploy from shadowing a secret", async () => {
    const plain = await apiError(hearth.putSecret("sec", "PLAIN", "v"));
    expect(plain).toMatchObject({ status: 400, code: "ERR_BAD_REQUEST" });
    expect(plain.message).toMatch(/plain env variable PLAIN/);

    await hearth.putSecret("sec", "API_KEY", "the-secret");
    const deploy = await apiError(hearth.deploy("sec", { code: READS_ENV, env: { PLAIN: "p", API_KEY: "plain" } }));
    expect(deploy).toMatchObject({ status: 400, code: "ERR_BAD_REQUEST" });
    expect(deploy.message).toMatch(/env API_KEY would shadow sec's secret of the same name/);
    // A redeploy that does not shadow keeps the secret.
    await hearth.deploy("sec", { code: `${READS_ENV}\n// v2`, env: { PLAIN: "plain-2" } });
    await expect.poll(() => seen("sec")).toEqual({ api: "the-secret", plain: "plain-2" });
    await hearth.removeSecret("sec", "API_KEY");
  });
});

describe("keys", () => {
  it("a worker without the key fails the function's load with ERR_SECRETS_NOT_CONFIGURED, logged, and serves the rest", async () => {
    await hearth.deploy("no-secrets", { code: READS_ENV });
    await hearth.putSecret("sec", "API_KEY", "needs-a-key");
    await cluster.worker?.close();
    const lines: string[] = [];
    await cluster.startWorker({ secretsKeyring: null, log: captureLog(lines) });
    try {
      await expect.poll(async () => (await hearth.invoke("no-secrets")).status, RESTART_POLL).toBe(200);
      // Another worker might have the key: the caller hears "no capacity" once the scheduler's wait is over.
      const res = await hearth.invoke("sec");
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text()).error.code).toBe("ERR_NO_CAPACITY");
      const why = lines.filter((line) => line.includes("ERR_SECRETS_NOT_CONFIGURED"));
      expect(why.join("\n")).toMatch(/Function sec has secrets, but this process has no HEARTH_SECRETS_KEY/);
      expect(lines.join("\n")).not.toContain("needs-a-key");
    } finally {
      await cluster.worker?.close();
      await cluster.startWorker({ secretsKeyring: keyringOf(oldKey) });
    }
    await expect.poll(() => seen("sec"), RESTART_POLL).toMatchObject({ api: "needs-a-key" });
  });

  it("rotates: the previous key still opens, reencrypt reseals everything, then the previous key can go", async () => {
    const newKey = keyText();
    const oldId = keyringOf(oldKey).current.id;
    const newId = keyringOf(newKey).current.id;
    const gatewayWith = async (keyring: SecretKeyring) => {
      const gateway = new Gateway({ nc: cluster.nc, token: TEST_TOKEN, port: 0, secretsKeyring: keyring });
      await gateway.start();
      return { gateway, client: new HearthClient({ url: gateway.url, token: TEST_TOKEN }) };
    };

    await hearth.putSecret("sec", "API_KEY", "needs-a-key");
    await expect.poll(() => seen("sec")).toMatchObject({ api: "needs-a-key" });
    // A gateway that lost the old key cannot reseal its values, and says which key they need.
    const without = await gatewayWith(keyringOf(newKey));
    try {
      const report = await without.client.reencryptSecrets();
      expect(report.resealed).toBe(0);
      expect(report.failed).toEqual([
        `sec.API_KEY: Secret API_KEY of sec was sealed with key ${oldId}, which is not configured (configured: ${newId}); set it as HEARTH_SECRETS_KEY or HEARTH_SECRETS_PREVIOUS_KEY`,
      ]);
    } finally {
      await without.gateway.close();
    }
    // A worker with only the new key meets the same typed error.
    await cluster.worker?.close();
    const lines: string[] = [];
    await cluster.startWorker({ secretsKeyring: keyringOf(newKey), log: captureLog(lines) });
    // Each call asks again (the first may meet the old worker's stale route); none succeeds.
    await expect
      .poll(async () => {
        expect((await hearth.invoke("sec")).status).toBe(503);
        return lines.filter((line) => line.includes("ERR_SECRET_KEY_UNKNOWN")).join("\n");
      }, RESTART_POLL)
      .toContain(`sealed with key ${oldId}`);

    const rotated = await gatewayWith(keyringOf(newKey, oldKey));
    try {
      expect(await rotated.client.reencryptSecrets()).toEqual({ resealed: 1, current: 0, failed: [] });
      expect(await rotated.client.reencryptSecrets()).toEqual({ resealed: 0, current: 1, failed: [] });
      const kv = await new Kvm(cluster.nc).open(BUCKETS.secrets);
      expect(JSON.parse((await kv.get("sec.API_KEY"))?.string() ?? "{}").kid).toBe(newId);
      // The worker with the new key alone now opens it (its failed load left nothing behind).
      await expect.poll(() => seen("sec"), RESTART_POLL).toMatchObject({ api: "needs-a-key" });
      await rotated.client.putSecret("sec", "API_KEY", "after-rotation");
      await expect.poll(() => seen("sec")).toMatchObject({ api: "after-rotation" });
    } finally {
      await rotated.gateway.close();
    }
  });
});
