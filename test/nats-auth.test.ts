import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection, nkeys } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleLogsApi } from "../control/logs-api.ts";
import {
  ASYNC_BUCKETS,
  AsyncStore,
  BUCKETS,
  connectNats,
  encodeLogEntry,
  ensureLogStream,
  type FunctionRecord,
  FunctionStore,
  LOG_STREAM,
  LOG_SUBJECTS,
  NamespaceStore,
  natsOptionsFromEnv,
  SecretKeyring,
  SecretStore,
  STREAMS,
  SUBJECTS,
  TokenStore,
} from "../protocol/index.ts";
import { buildExecutorEnv } from "../runtime/index.ts";
import { ingestNatsOptionsFromEnv } from "../runtime/main.ts";
import {
  type ClusterIdentities,
  createClusterIdentities,
  identitiesPath,
  type NatsIdentity,
  natsEnvOf,
  natsUrlWithCredentials,
  natsUsersOf,
} from "../sdk/dev/nats-identities.ts";
import { permissionsFor, renderAuthorization } from "../sdk/dev/nats-permissions.ts";
import { buildBundle, HearthClient, type NatsServer, startNatsServer } from "../sdk/index.ts";
import { type DevCluster, startDevCluster } from "./support/cli.ts";
import { connectToDevNats, devIdentities } from "./support/dev-nats.ts";
import { startCustomNatsServer } from "./support/nats-custom.ts";
import { childPids } from "./support/proc.ts";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe("natsOptionsFromEnv", () => {
  it("takes user and password out of the URL, percent-decoded, and keeps them out of the address", () => {
    const s = natsOptionsFromEnv({ NATS_URL: "nats://al%40ice:p%3Ass@127.0.0.1:4222" });
    expect(s).toMatchObject({ auth: "user", user: "al@ice", url: "nats://127.0.0.1:4222" });
    expect(s.authenticator?.()).toEqual({ user: "al@ice", pass: "p:ss" });
  });

  it("does not mistake a numeric password for the port (nats.js reads the first :digits)", () => {
    const s = natsOptionsFromEnv({ NATS_URL: "u:1234@10.0.0.1:4333,nats://u:1234@10.0.0.2" });
    expect(s.servers).toEqual(["nats://10.0.0.1:4333", "nats://10.0.0.2"]);
    expect(s.authenticator?.()).toEqual({ user: "u", pass: "1234" });
  });

  it("reads a bare userinfo as a token, and tls:// as TLS required", () => {
    const s = natsOptionsFromEnv({ NATS_URL: "tls://s3cr3t@nats.example:4222" });
    expect(s).toMatchObject({ auth: "token", user: undefined, tls: {}, url: "tls://nats.example:4222" });
    expect(s.authenticator?.()).toEqual({ auth_token: "s3cr3t" });
  });

  it("derives a private inbox prefix from the user, unless NATS_INBOX_PREFIX says otherwise", () => {
    const env = { NATS_URL: "nats://h:1", NATS_USER: "executor.worker-1", NATS_PASSWORD: "p" };
    expect(natsOptionsFromEnv(env).inboxPrefix).toBe("_INBOX_executor_worker-1");
    expect(natsOptionsFromEnv({ ...env, NATS_INBOX_PREFIX: "_R.x" }).inboxPrefix).toBe("_R.x");
    expect(natsOptionsFromEnv({ NATS_URL: "nats://h:1" }).inboxPrefix).toBeUndefined();
  });

  it("refuses two ways to authenticate, half a pair, unreadable files and missing NATS_URL, naming the variable", () => {
    const url = "nats://h:1";
    expect(() => natsOptionsFromEnv({})).toThrow(/NATS_URL is required/);
    expect(() => natsOptionsFromEnv({ NATS_URL: url, NATS_USER: "u", NATS_PASSWORD: "p", NATS_TOKEN: "t" })).toThrow(
      /not NATS_USER and NATS_TOKEN/,
    );
    expect(() => natsOptionsFromEnv({ NATS_URL: "nats://a:b@h:1", NATS_TOKEN: "t" })).toThrow(
      /credentials in NATS_URL/,
    );
    expect(() => natsOptionsFromEnv({ NATS_URL: url, NATS_USER: "u" })).toThrow(/NATS_PASSWORD/);
    expect(() => natsOptionsFromEnv({ NATS_URL: url, NATS_TLS_CERT: "/x" })).toThrow(/NATS_TLS_KEY/);
    expect(() => natsOptionsFromEnv({ NATS_URL: url, NATS_CREDS: "/nonexistent.creds" })).toThrow(
      /NATS_CREDS: cannot read/,
    );
    expect(() => natsOptionsFromEnv({ NATS_URL: "http://h:1" })).toThrow(/unsupported scheme/);
  });

  it("hands a .creds file to nats.js's credsAuthenticator, read at each connect", () => {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const path = join(tmpDir(), "user.creds");
    const creds = (jwt: string) =>
      `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
      `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
    writeFileSync(path, creds("eyJ0eXAiOiJKV1QifQ.first.sig"));
    const { auth, authenticator } = natsOptionsFromEnv({ NATS_URL: "nats://h:1", NATS_CREDS: path });
    expect(auth).toBe("creds");
    const answer = (nonce: string) => authenticator?.(nonce) as { jwt: string; nkey: string; sig: string };
    expect(answer("abc")).toMatchObject({ jwt: "eyJ0eXAiOiJKV1QifQ.first.sig", nkey: user.getPublicKey() });
    expect(user.verify(new TextEncoder().encode("abc"), nkeys.decode(answer("abc").sig))).toBe(true);
    writeFileSync(path, creds("eyJ0eXAiOiJKV1QifQ.rotated.sig"));
    expect(answer("abc").jwt).toBe("eyJ0eXAiOiJKV1QifQ.rotated.sig");
  });
});

let scratch: string | null = null;
function tmpDir(): string {
  scratch ??= mkdtempSync(join(tmpdir(), "hearth-nats-auth-"));
  return scratch;
}
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("NATS credentials and TLS against real servers", () => {
  it("connects with user:password in NATS_URL, which nats.js alone refuses", async () => {
    await using server = await startCustomNatsServer(() => [
      'authorization { users = [ { user: "alice", password: "p@ss:w0rd/1" } ] }',
    ]);
    const url = `nats://alice:${encodeURIComponent("p@ss:w0rd/1")}@127.0.0.1:${server.port}`;
    await expect(connect({ servers: url, reconnect: false })).rejects.toThrow(/Authorization Violation/);
    const nc = await connectNats(url, "test");
    await nc.flush();
    await nc.close();
  });

  it("connects with NATS_TOKEN and with NATS_NKEY_SEED_FILE", async () => {
    await using tokenServer = await startCustomNatsServer(() => ['authorization { token: "t0k3n" }']);
    const viaToken = await connectNats(
      natsOptionsFromEnv({ NATS_URL: `nats://127.0.0.1:${tokenServer.port}`, NATS_TOKEN: "t0k3n" }),
      "test",
    );
    await viaToken.close();

    const user = nkeys.createUser();
    await using nkeyServer = await startCustomNatsServer(
      () => [`authorization { users = [ { nkey: ${JSON.stringify(user.getPublicKey())} } ] }`],
      (dir) => writeFileSync(join(dir, "user.nk"), `${new TextDecoder().decode(user.getSeed())}\n`),
    );
    const viaNkey = await connectNats(
      natsOptionsFromEnv({
        NATS_URL: `nats://127.0.0.1:${nkeyServer.port}`,
        NATS_NKEY_SEED_FILE: join(nkeyServer.dir, "user.nk"),
      }),
      "test",
    );
    await viaNkey.close();
  });

  it.skipIf(!hasOpenssl())("connects over mutual TLS with NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY", async () => {
    await using server = await startCustomNatsServer(
      (dir) => [
        "tls {",
        `  cert_file: ${JSON.stringify(join(dir, "server.pem"))}`,
        `  key_file: ${JSON.stringify(join(dir, "server.key"))}`,
        `  ca_file: ${JSON.stringify(join(dir, "ca.pem"))}`,
        "  verify: true",
        "}",
      ],
      makeCertificates,
    );
    const dir = server.dir;
    const env = { NATS_URL: `tls://127.0.0.1:${server.port}`, NATS_TLS_CA: join(dir, "ca.pem") };
    // Without a client certificate the server refuses the handshake.
    await expect(
      connect({ servers: env.NATS_URL, reconnect: false, tls: { caFile: env.NATS_TLS_CA } }),
    ).rejects.toThrow();
    const nc = await connectNats(
      natsOptionsFromEnv({ ...env, NATS_TLS_CERT: join(dir, "client.pem"), NATS_TLS_KEY: join(dir, "client.key") }),
      "test",
    );
    await nc.flush();
    await nc.close();
  });
});

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all P-256, valid one day. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  const key = (name: string) => openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`);
  key("ca");
  openssl("req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=hearth-test-ca");
  for (const [name, ext] of [
    ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"],
    ["client", "extendedKeyUsage=clientAuth"],
  ] as const) {
    key(name);
    openssl("req", "-new", "-key", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=hearth-test-${name}`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    );
  }
}

/** A connection as one identity, with every permission violation the server reports on it. */
interface Client {
  readonly nc: NatsConnection;
  /** `"publish <subject>"` / `"subscription <subject>"`, in order. */
  readonly refused: string[];
}

async function connectAs(nats: NatsServer, identity: NatsIdentity): Promise<Client> {
  const nc = await connectNats(natsOptionsFromEnv({ NATS_URL: nats.url, ...natsEnvOf(identity) }), identity.user);
  const refused: string[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      const err = status.type === "error" ? (status.error as { operation?: string; subject?: string }) : null;
      if (err?.operation) refused.push(`${err.operation} ${err.subject}`);
    }
  })();
  return { nc, refused };
}

/**
 * What the server refused while `act` ran: a flush (PING/PONG) comes back after any -ERR it caused,
 * and one turn of the event loop lets the status iterator hand it over.
 */
async function refusedDuring(client: Client, act: (nc: NatsConnection) => void): Promise<string[]> {
  const before = client.refused.length;
  act(client.nc);
  await client.nc.flush();
  await new Promise((resolve) => setImmediate(resolve));
  return client.refused.slice(before);
}

const publishTo = (subject: string) => (nc: NatsConnection) => nc.publish(subject, "forged");
const subscribeTo = (subject: string) => (nc: NatsConnection) => void nc.subscribe(subject, { callback: () => {} });

describe("the app identity's permissions", () => {
  const ids = createClusterIdentities(["node-a"]);
  const users = natsUsersOf(ids);
  const app = users.find((u) => u.user === "app")?.permissions;

  it("may publish and subscribe anywhere but Hearth's space, written as deny lists nats-server enforces", () => {
    expect(app).toMatchObject({ publish: [">"], subscribe: [">"], allowResponses: false });
    expect(app?.publishDeny).toEqual(app?.subscribeDeny);
    const rendered = renderAuthorization(users);
    const appBlock = rendered.slice(rendered.indexOf('user: "app"'));
    expect(appBlock).toMatch(/publish: \{ allow: \[">"\], deny: \["hearth\.>", /);
    expect(appBlock).toMatch(/subscribe: \{ allow: \[">"\], deny: \["hearth\.>", /);
    // Hearth's own identities have no deny list.
    expect(rendered.slice(0, rendered.indexOf('user: "app"'))).not.toContain("deny");
  });

  it("denies every Hearth bucket, stream and inbox, and neither its own inbox nor nats.js's default", () => {
    const deny = app?.publishDeny ?? [];
    for (const bucket of [...Object.values(BUCKETS), ...Object.values(ASYNC_BUCKETS)]) {
      expect(deny).toContain(`$KV.${bucket}.>`);
      expect(deny).toContain(`$O.${bucket}.>`);
    }
    for (const stream of [STREAMS.async, STREAMS.triggers, STREAMS.deadLetters, `KV_${BUCKETS.functions}`]) {
      expect(deny).toEqual(
        expect.arrayContaining([
          `$JS.API.STREAM.*.${stream}`, // CREATE, UPDATE, DELETE, INFO, PURGE, ...
          `$JS.API.STREAM.*.*.${stream}`, // MSG.GET, MSG.DELETE, ...
          `$JS.API.DIRECT.GET.${stream}.>`,
          `$JS.API.CONSUMER.*.${stream}.>`, // CREATE, INFO, DELETE
          `$JS.API.CONSUMER.*.*.${stream}.>`, // DURABLE.CREATE, MSG.NEXT
          `$JS.ACK.${stream}.>`,
        ]),
      );
    }
    for (const other of ["gateway", "scheduler", "worker_node-a", "executor_node-a"]) {
      expect(deny).toContain(`_INBOX_${other}.>`);
    }
    expect(deny).toEqual(expect.arrayContaining(["$SYS.>", "$JS.EVENT.>"]));
    expect(deny.filter((subject) => subject.startsWith("_INBOX_app") || subject.startsWith("_INBOX."))).toEqual([]);
    expect(() => permissionsFor("app", "app")).toThrow(/other identities' inboxes/);
  });

  it("reaches applications as a URL, and workers as HEARTH_INGEST_NATS_*, which executors never get", () => {
    expect(natsUrlWithCredentials("nats://127.0.0.1:4222", { role: "app", user: "app", password: "a/b@c" })).toBe(
      "nats://app:a%2Fb%40c@127.0.0.1:4222",
    );
    const settings = ingestNatsOptionsFromEnv(
      { HEARTH_INGEST_NATS_USER: "app", HEARTH_INGEST_NATS_PASSWORD: "pw" },
      "nats://127.0.0.1:4222",
    );
    expect(settings).toMatchObject({
      auth: "user",
      user: "app",
      inboxPrefix: "_INBOX_app",
      url: "nats://127.0.0.1:4222",
    });
    expect(ingestNatsOptionsFromEnv({ NATS_USER: "worker.w1" }, "nats://h:1")).toBeNull();
    expect(() => ingestNatsOptionsFromEnv({ HEARTH_INGEST_NATS_USER: "app" }, "nats://h:1")).toThrow(
      /HEARTH_INGEST_NATS_PASSWORD/,
    );
    const executorEnv = buildExecutorEnv(
      { HEARTH_INGEST_NATS_USER: "app", HEARTH_INGEST_NATS_PASSWORD: "pw", HEARTH_INGEST_NATS_URL: "nats://h:2" },
      { natsUrl: "nats://h:1", node: "w1" },
    );
    expect(Object.keys(executorEnv).filter((name) => name.includes("INGEST"))).toEqual([]);
  });
});

describe("least privilege on an auth-enabled nats-server", () => {
  let nats: NatsServer;
  let ids: ClusterIdentities;
  const clients: Client[] = [];
  let gateway: Client;
  let scheduler: Client;
  let workerA: Client;
  let executorA: Client;
  let executorB: Client;
  let app: Client;
  const node = (name: string) => {
    const found = ids.nodes.get(name);
    if (!found) throw new Error(`no node ${name}`);
    return found;
  };
  const record: FunctionRecord = {
    name: "victim",
    versionId: 1,
    digest: FunctionStore.digestOf(new TextEncoder().encode("bundle")),
    bundleBytes: 6,
    version: "v1",
    env: { SECRET: "s3cr3t" },
    memoryMb: 128,
    timeoutMs: 1000,
    cpuMs: 50,
    concurrency: 1,
    maxBodyBytes: 1024,
    createdAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  };

  beforeAll(async () => {
    ids = createClusterIdentities(["node-a", "node-b"]);
    nats = await startNatsServer({ users: natsUsersOf(ids) });
    const connectTracked = async (identity: NatsIdentity) => {
      const client = await connectAs(nats, identity);
      clients.push(client);
      return client;
    };
    gateway = await connectTracked(ids.gateway);
    scheduler = await connectTracked(ids.scheduler);
    workerA = await connectTracked(node("node-a").worker);
    executorA = await connectTracked(node("node-a").executor);
    executorB = await connectTracked(node("node-b").executor);
    app = await connectTracked(ids.app);
    // The control plane creates the stores and deploys, as `hearth dev` and the gateway do.
    await (await FunctionStore.open(gateway.nc)).put(record, new TextEncoder().encode("bundle"));
    await AsyncStore.open(gateway.nc);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.nc.close()));
    await nats?.stop();
  });

  it("refuses a client without credentials, and one with a wrong password", async () => {
    await expect(connect({ servers: nats.url, reconnect: false })).rejects.toThrow(/Authorization Violation/);
    const env = { NATS_URL: nats.url, NATS_USER: "gateway", NATS_PASSWORD: "guess" };
    await expect(
      connect({ servers: nats.url, reconnect: false, authenticator: natsOptionsFromEnv(env).authenticator }),
    ).rejects.toThrow(/Authorization Violation/);
  });

  it("the gateway cannot receive invocations nor impersonate a worker, an executor or the scheduler", async () => {
    expect(await refusedDuring(gateway, subscribeTo("hearth.x.>"))).toEqual(["subscription hearth.x.>"]);
    expect(await refusedDuring(gateway, subscribeTo(SUBJECTS.activate))).toEqual([`subscription ${SUBJECTS.activate}`]);
    for (const subject of [
      SUBJECTS.load,
      SUBJECTS.heartbeat,
      SUBJECTS.executorLost,
      SUBJECTS.workerCommand("node-a"),
      SUBJECTS.leader,
    ]) {
      expect(await refusedDuring(gateway, publishTo(subject))).toEqual([`publish ${subject}`]);
    }
  });

  it("a forged load report or heartbeat from anyone but executors and workers never reaches the scheduler", async () => {
    const heard: string[] = [];
    scheduler.nc.subscribe(SUBJECTS.load, { callback: (_err, msg) => void heard.push(msg.string()) });
    scheduler.nc.subscribe(SUBJECTS.heartbeat, { callback: (_err, msg) => void heard.push(msg.string()) });
    await scheduler.nc.flush();
    expect(await refusedDuring(gateway, publishTo(SUBJECTS.load))).toEqual([`publish ${SUBJECTS.load}`]);
    expect(await refusedDuring(workerA, publishTo(SUBJECTS.load))).toEqual([`publish ${SUBJECTS.load}`]);
    expect(await refusedDuring(scheduler, publishTo(SUBJECTS.heartbeat))).toEqual([`publish ${SUBJECTS.heartbeat}`]);
    expect(await refusedDuring(executorA, publishTo(SUBJECTS.heartbeat))).toEqual([`publish ${SUBJECTS.heartbeat}`]);
    executorA.nc.publish(SUBJECTS.load, "genuine");
    await executorA.nc.flush();
    await scheduler.nc.flush();
    await expect.poll(() => heard).toEqual(["genuine"]);
  });

  it("gateways hear each other's admission counts and load; nobody else can forge them", async () => {
    const heard: string[] = [];
    const before = gateway.refused.length;
    for (const subject of [SUBJECTS.admissionCounts, SUBJECTS.gatewayLoad]) {
      gateway.nc.subscribe(subject, { callback: (_err, msg) => void heard.push(`${msg.subject} ${msg.string()}`) });
    }
    await gateway.nc.flush();
    for (const client of [scheduler, workerA, executorA]) {
      expect(await refusedDuring(client, publishTo(SUBJECTS.admissionCounts))).toEqual([
        `publish ${SUBJECTS.admissionCounts}`,
      ]);
    }
    gateway.nc.publish(SUBJECTS.admissionCounts, "counts");
    gateway.nc.publish(SUBJECTS.gatewayLoad, "load");
    await gateway.nc.flush();
    await expect
      .poll(() => heard.sort())
      .toEqual([`${SUBJECTS.admissionCounts} counts`, `${SUBJECTS.gatewayLoad} load`]);
    expect(gateway.refused.slice(before)).toEqual([]);
  });

  it("an executor receives only its own node's invocations and answers only what it received", async () => {
    const subject = SUBJECTS.invoke("node-a-4242", "victim");
    expect(subject).toBe("hearth.x.node-a.4242.victim");
    expect(await refusedDuring(executorB, subscribeTo(subject))).toEqual([`subscription ${subject}`]);
    expect(await refusedDuring(executorB, subscribeTo("hearth.x.>"))).toEqual(["subscription hearth.x.>"]);
    expect(await refusedDuring(workerA, subscribeTo(SUBJECTS.invokeNode("node-a")))).toEqual([
      "subscription hearth.x.node-a.>",
    ]);
    // Another identity's replies (the gateway's invocation answers, records it read) stay out of reach.
    expect(await refusedDuring(executorA, subscribeTo("_INBOX.>"))).toEqual(["subscription _INBOX.>"]);
    expect(await refusedDuring(executorA, publishTo("_INBOX.forged.1"))).toEqual(["publish _INBOX.forged.1"]);

    const before = executorA.refused.length;
    executorA.nc.subscribe(subject, { callback: (_err, msg) => void msg.respond(`answer to ${msg.string()}`) });
    await executorA.nc.flush();
    const reply = await gateway.nc.request(subject, "call", { timeout: 2_000 });
    expect(reply.string()).toBe("answer to call");
    await executorA.nc.flush();
    expect(executorA.refused.slice(before)).toEqual([]);
  });

  it("a worker takes commands for its own node only, and answers them", async () => {
    const other = SUBJECTS.workerCommand("node-b");
    expect(await refusedDuring(workerA, subscribeTo(other))).toEqual([`subscription ${other}`]);
    workerA.nc.subscribe(SUBJECTS.workerCommand("node-a"), { callback: (_err, msg) => void msg.respond("ok") });
    await workerA.nc.flush();
    const reply = await scheduler.nc.request(SUBJECTS.workerCommand("node-a"), "{}", { timeout: 2_000 });
    expect(reply.string()).toBe("ok");
  });

  it("executors publish function logs and nothing else of them; the gateway creates and reads HEARTH_LOGS", async () => {
    await ensureLogStream(await jetstreamManager(gateway.nc));
    const subject = LOG_SUBJECTS.fn("victim");
    const entry = { fn: "victim", version: "v1", invocationId: null, level: "info", kind: "console" } as const;
    for (const executor of [executorA, executorB]) {
      const before = executor.refused.length;
      executor.nc.publish(
        subject,
        encodeLogEntry({ ...entry, time: new Date().toISOString(), message: "from an executor" }),
      );
      await executor.nc.flush();
      expect(executor.refused.slice(before)).toEqual([]);
      expect(await refusedDuring(executor, subscribeTo(LOG_SUBJECTS.all))).toEqual([
        `subscription ${LOG_SUBJECTS.all}`,
      ]);
      const spy = `$JS.API.CONSUMER.CREATE.${LOG_STREAM}.spy.${LOG_SUBJECTS.all}`;
      expect(await refusedDuring(executor, publishTo(spy))).toEqual([`publish ${spy}`]);
    }
    // (The app identity is denied all of hearth.>: see its own test below.)
    for (const client of [scheduler, workerA]) {
      expect(await refusedDuring(client, publishTo(subject))).toEqual([`publish ${subject}`]);
    }
    // The gateway's logs API, history and follow, on the gateway's identity alone.
    const deps = { js: jetstream(gateway.nc), store: await FunctionStore.open(gateway.nc), natsConnected: () => true };
    const req = (target: string) => ({ method: "GET", target, headers: [], body: new Uint8Array() });
    const before = gateway.refused.length;
    const history = await handleLogsApi(req("/v1/functions/victim/logs"), "/v1/functions/victim/logs", deps);
    expect(
      String(history?.body)
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).message),
    ).toEqual(["from an executor", "from an executor"]);
    const follow = await handleLogsApi(req("/v1/functions/victim/logs?follow=1"), "/v1/functions/victim/logs", deps);
    const lines = follow?.stream?.[Symbol.asyncIterator]();
    expect(JSON.parse(new TextDecoder().decode((await lines?.next())?.value)).message).toBe("from an executor");
    await lines?.return?.();
    expect(gateway.refused.slice(before)).toEqual([]);
  });

  it("only the gateway writes function records and bundles", async () => {
    const kvWrite = `$KV.${BUCKETS.functions}.victim`;
    const bundleWrite = `$O.${BUCKETS.bundles}.M.${Buffer.from(record.digest).toString("base64url")}`;
    for (const client of [scheduler, workerA, executorA]) {
      expect(await refusedDuring(client, publishTo(kvWrite))).toEqual([`publish ${kvWrite}`]);
      expect(await refusedDuring(client, publishTo(bundleWrite))).toEqual([`publish ${bundleWrite}`]);
      const create = `$JS.API.STREAM.CREATE.KV_${BUCKETS.functions}`;
      expect(await refusedDuring(client, publishTo(create))).toEqual([`publish ${create}`]);
    }
    const deleteStream = `$JS.API.STREAM.DELETE.OBJ_${BUCKETS.bundles}`;
    expect(await refusedDuring(scheduler, publishTo(deleteStream))).toEqual([`publish ${deleteStream}`]);
    // The record is as the gateway wrote it.
    expect((await (await FunctionStore.open(workerA.nc)).get("victim"))?.env).toEqual({ SECRET: "s3cr3t" });
  });

  it("an executor reads bundles but not function records (and their env)", async () => {
    const bundles = await new Objm(executorA.nc).open(BUCKETS.bundles);
    expect(new TextDecoder().decode((await bundles.getBlob(record.digest)) ?? undefined)).toBe("bundle");
    const records = await new Kvm(executorA.nc).open(BUCKETS.functions);
    await expect(records.get("victim")).rejects.toThrow(/Permissions Violation/);
    const directGet = `$JS.API.DIRECT.GET.KV_${BUCKETS.functions}.$KV.${BUCKETS.functions}.victim`;
    await expect(executorA.nc.request(directGet, "", { timeout: 1_000 })).rejects.toThrow(/Permissions Violation/);
    const consumer = `$JS.API.CONSUMER.CREATE.KV_${BUCKETS.functions}.spy.$KV.${BUCKETS.functions}.>`;
    expect(await refusedDuring(executorA, publishTo(consumer))).toEqual([`publish ${consumer}`]);
  });
  it("the gateway writes sealed secrets, a worker reads and opens them, an executor cannot read them", async () => {
    const keyring = SecretKeyring.fromEnv({ HEARTH_SECRETS_KEY: Buffer.alloc(32, 7).toString("base64") });
    await (await SecretStore.open(gateway.nc, keyring)).put("victim", "API_KEY", "s3cr3t-value");
    const asWorker = await SecretStore.open(workerA.nc, keyring, { create: false });
    expect(await asWorker.values("victim", ["API_KEY"])).toEqual({ API_KEY: "s3cr3t-value" });
    const secretWrite = `$KV.${BUCKETS.secrets}.victim.API_KEY`;
    for (const client of [scheduler, workerA, executorA])
      expect(await refusedDuring(client, publishTo(secretWrite))).toEqual([`publish ${secretWrite}`]);
    for (const client of [scheduler, executorA]) {
      const sealed = await new Kvm(client.nc).open(BUCKETS.secrets);
      await expect(sealed.get("victim.API_KEY")).rejects.toThrow(/Permissions Violation/);
    }
    const directGet = `$JS.API.DIRECT.GET.KV_${BUCKETS.secrets}.$KV.${BUCKETS.secrets}.victim.API_KEY`;
    await expect(executorA.nc.request(directGet, "", { timeout: 1_000 })).rejects.toThrow(/Permissions Violation/);
    const consumer = `$JS.API.CONSUMER.CREATE.KV_${BUCKETS.secrets}.spy.$KV.${BUCKETS.secrets}.>`;
    expect(await refusedDuring(executorA, publishTo(consumer))).toEqual([`publish ${consumer}`]);
  });
  it("only the gateway reads and writes tokens and namespaces, and follows the tokens bucket", async () => {
    const tokens = await TokenStore.open(gateway.nc);
    const namespaces = await NamespaceStore.open(gateway.nc);
    const changes: string[] = [];
    const watch = await tokens.watch((change) => void changes.push(`${change.kind} ${change.key}`));
    const token = { id: "0123456789ab", name: "ci", scopes: ["deploy:team-a" as const], sha256: "00", createdAt: "" };
    await tokens.put(token);
    expect((await tokens.list()).map((t) => t.id)).toEqual([token.id]);
    expect(await tokens.delete(token.id)).toBe(true);
    await expect.poll(() => changes).toEqual([`put ${token.id}`, `delete ${token.id}`]);
    watch.stop();
    const ns = { name: "team-a", quotas: { functions: 1 }, createdAt: "", updatedAt: "" };
    expect(await namespaces.create(ns)).toBe(true);
    expect(await namespaces.create(ns)).toBe(false);
    expect((await namespaces.list()).map((n) => n.name)).toEqual(["team-a"]);
    await namespaces.delete("team-a");
    expect(await namespaces.get("team-a")).toBeNull();
    // (The app identity is denied every Hearth bucket: see its own test below.)
    for (const client of [scheduler, workerA, executorA]) {
      for (const bucket of [BUCKETS.tokens, BUCKETS.namespaces]) {
        const kv = await new Kvm(client.nc).open(bucket).catch((err: Error) => err);
        if (!(kv instanceof Error)) await expect(kv.get("x")).rejects.toThrow(/Permissions Violation/);
        const write = `$KV.${bucket}.x`;
        expect(await refusedDuring(client, publishTo(write))).toEqual([`publish ${write}`]);
      }
    }
  });

  it("the app identity publishes, subscribes and keeps a stream of its own subjects", async () => {
    const heard: string[] = [];
    app.nc.subscribe("orders.>", { callback: (_err, msg) => void heard.push(`${msg.subject} ${msg.string()}`) });
    // A wildcard that only overlaps Hearth's space is accepted; the server withholds Hearth's messages from it.
    app.nc.subscribe(">", { callback: (_err, msg) => void heard.push(`> ${msg.subject}`) });
    await app.nc.flush();
    executorA.nc.publish(SUBJECTS.load, "{}");
    await executorA.nc.flush();
    app.nc.publish("orders.created", "o-1");
    await app.nc.flush();
    await expect.poll(() => heard.sort()).toEqual(["> orders.created", "orders.created o-1"]);

    const jsm = await jetstreamManager(app.nc);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    const ack = await jetstream(app.nc).publish("orders.paid", "o-1");
    expect(ack).toMatchObject({ stream: "ORDERS", seq: 1 });
    expect((await jsm.streams.getMessage("ORDERS", { seq: 1 }))?.string()).toBe("o-1");
    expect(app.refused).toEqual([]);
    // Which is why a worker reads nats:// trigger sources as the app: its own identity may not.
    expect(await refusedDuring(workerA, subscribeTo("orders.>"))).toEqual(["subscription orders.>"]);
  });

  it("the app identity cannot touch Hearth's subjects, buckets, streams or other identities' inboxes", async () => {
    const invocation = SUBJECTS.invoke("node-a-4242", "victim");
    for (const subject of [invocation, "hearth.trigger.t1", SUBJECTS.heartbeat, "_INBOX_gateway.forged.1"]) {
      expect(await refusedDuring(app, publishTo(subject))).toEqual([`publish ${subject}`]);
    }
    for (const subject of [
      `$KV.${BUCKETS.functions}.>`,
      "_INBOX_gateway.>",
      "hearth.>",
      `${SUBJECTS.invokeNode("node-a")}`,
    ]) {
      expect(await refusedDuring(app, subscribeTo(subject))).toEqual([`subscription ${subject}`]);
    }
    const records = await new Kvm(app.nc).open(BUCKETS.functions);
    await expect(records.get("victim")).rejects.toThrow(/Permissions Violation/);
    const jsm = await jetstreamManager(app.nc);
    await expect(jsm.streams.delete(STREAMS.async)).rejects.toThrow(/Permissions Violation/);
    await expect(jsm.streams.purge(STREAMS.triggers)).rejects.toThrow(/Permissions Violation/);
    await expect(jsm.streams.info(`KV_${BUCKETS.functions}`)).rejects.toThrow(/Permissions Violation/);
    const steal = `$JS.API.CONSUMER.CREATE.${STREAMS.async}.spy`;
    expect(await refusedDuring(app, publishTo(steal))).toEqual([`publish ${steal}`]);
    // Hearth's stream is untouched.
    expect((await (await jetstreamManager(gateway.nc)).streams.info(STREAMS.async)).config.name).toBe(STREAMS.async);
  });
});

describe("hearth dev runs NATS with one identity per role", () => {
  let cluster: DevCluster;

  beforeAll(async () => {
    cluster = await startDevCluster();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it("deploys and invokes a function with every component on its own identity", async () => {
    const hearth = new HearthClient({ url: cluster.url, token: cluster.token });
    await hearth.deploy("hello", { ...(await buildBundle(fixture("echo.ts"))), env: { GREETING: "hi" } });
    const res = await hearth.invoke("hello", { path: "/x?y=1", body: "hi" });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text())).toMatchObject({ body: "hi", env: { GREETING: "hi" } });
    // A redeploy reaches the warm executor; list, status and removal work too.
    await hearth.deploy("hello", { ...(await buildBundle(fixture("echo.ts"))), env: { GREETING: "hey" } });
    expect(JSON.parse((await hearth.invoke("hello")).text())).toMatchObject({ env: { GREETING: "hey" } });
    expect((await hearth.list()).map((f) => f.name)).toEqual(["hello"]);
    expect((await hearth.status()).nodes.map((n) => n.id)).toEqual(["worker-1"]);
    await hearth.remove("hello");
    expect((await hearth.invoke("hello")).status).toBe(404);
    // Every component logs what NATS refused it (connectNats): nothing was.
    expect(cluster.output()).not.toMatch(/Permissions Violation|NATS reported an error/);
  });

  it("refuses anonymous clients, and keeps the identities and server config readable by the owner only", async () => {
    await expect(connect({ servers: cluster.natsUrl, reconnect: false })).rejects.toThrow(/Authorization Violation/);
    const saved = identitiesPath({ HEARTH_HOME: cluster.home });
    expect(statSync(saved).mode & 0o777).toBe(0o600);
    expect(statSync(join(cluster.home, "nats", "nats-server.conf")).mode & 0o777).toBe(0o600);
    const users = devIdentities(cluster.home).map((i) => i.user);
    expect(users).toEqual(["gateway", "scheduler", "worker.worker-1", "executor.worker-1", "app"]);
    const app = devIdentities(cluster.home).find((i) => i.role === "app");
    expect(cluster.appNatsUrl).toBe(natsUrlWithCredentials(cluster.natsUrl, app as NatsIdentity));
    // As the gateway, a test (or the benchmark) may call an executor directly and hear its load.
    const nc = await connectToDevNats(cluster);
    const report = await new Promise<string>((resolve) =>
      nc.subscribe(SUBJECTS.load, { max: 1, callback: (_err, msg) => resolve(msg.string()) }),
    );
    expect(JSON.parse(report).node).toBe("worker-1");
    await nc.close();
  });

  it("gives each process its own identity and the admin token to the gateway alone", () => {
    const environ = (pid: number | undefined) =>
      Object.fromEntries(
        readFileSync(`/proc/${pid}/environ`, "utf8")
          .split("\0")
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
      ) as Record<string, string>;
    const gatewayEnv = environ(cluster.pids.gateway);
    const workerEnv = environ(cluster.pids["worker-1"]);
    expect(gatewayEnv).toMatchObject({ NATS_USER: "gateway", HEARTH_TOKEN: cluster.token });
    expect(environ(cluster.pids.scheduler)).toMatchObject({ NATS_USER: "scheduler" });
    expect(environ(cluster.pids.scheduler).HEARTH_TOKEN).toBeUndefined();
    expect(workerEnv).toMatchObject({
      NATS_USER: "worker.worker-1",
      HEARTH_EXECUTOR_NATS_USER: "executor.worker-1",
      HEARTH_INGEST_NATS_USER: "app",
    });
    expect(gatewayEnv.HEARTH_INGEST_NATS_USER).toBeUndefined();
    expect(workerEnv.HEARTH_TOKEN).toBeUndefined();
    const executors = childPids(cluster.pids["worker-1"] as number);
    expect(executors.length).toBeGreaterThan(0);
    for (const pid of executors) {
      const executorEnv = environ(pid);
      expect(executorEnv.NATS_USER).toBe("executor.worker-1");
      expect(executorEnv.NATS_PASSWORD).not.toBe(workerEnv.NATS_PASSWORD);
      expect(executorEnv.HEARTH_TOKEN).toBeUndefined();
      expect(Object.keys(executorEnv).filter((name) => name.startsWith("HEARTH_INGEST_NATS_"))).toEqual([]);
    }
  });
});

describe("hearth dev against a server of your own, credentials in NATS_URL", () => {
  it("every component, executors included, connects with nats://user:password@host", async () => {
    const everything = { publish: [">"], subscribe: [">"], allowResponses: false };
    const password = "s3cret:with@signs/and%";
    await using nats = await startNatsServer({ users: [{ user: "hearth", password, permissions: everything }] });
    const url = nats.url.replace("nats://", `nats://hearth:${encodeURIComponent(password)}@`);
    const cluster = await startDevCluster({ NATS_URL: url });
    try {
      const hearth = new HearthClient({ url: cluster.url, token: cluster.token });
      await hearth.deploy("hello", await buildBundle(fixture("echo.ts")));
      expect((await hearth.invoke("hello", { body: "hi" })).status).toBe(200);
      expect(cluster.output()).not.toMatch(/Authorization Violation|NATS reported an error/);
      expect(cluster.appNatsUrl).toBeNull();
    } finally {
      await cluster.stop();
    }
  });
});
