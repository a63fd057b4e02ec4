import { fileURLToPath } from "node:url";
import { type JetStreamManager, jetstreamManager, type StoredMsg } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prefersAsync } from "../gateway/async-invoke.ts";
import type { HttpRequest, HttpResponse } from "../gateway/index.ts";
import {
  ASYNC_BUCKETS,
  ASYNC_HEADERS,
  ASYNC_SUBJECTS,
  AsyncStore,
  type HeaderPairs,
  type InvocationStatus,
  type RequestHead,
  STREAMS,
} from "../protocol/index.ts";
import { runCli } from "./support/cli.ts";
import { bodyText, type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

const CODE = "export default { fetch: () => new Response('sync') }";
const encode = (text: string) => new TextEncoder().encode(text);

let cluster: InProcessCluster;
let store: AsyncStore;
let jsm: JetStreamManager;
let cliEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  // No worker and no scheduler: nothing runs the invocations, so they stay queued, and a sync
  // invocation is answered at once (503, no scheduler) instead of waiting for capacity.
  cluster = await startInProcessCluster({ worker: false, scheduler: false });
  store = await AsyncStore.open(cluster.nc);
  jsm = await jetstreamManager(cluster.nc);
  cliEnv = { HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN };
  const functions = ["accept", "keyed", "reused", "race", "stale", "bad-input", "results", "sync", "cli"];
  for (const name of functions) await cluster.hearth.deploy(name, { code: CODE });
  await cluster.hearth.deploy("small", { code: CODE, maxBodyBytes: 1024 });
});

afterAll(async () => {
  await cluster?.close();
});

/** An async invocation of `target` for `gateway.handle()`. */
function asyncPost(target: string, body = "payload", headers: HeaderPairs = []): HttpRequest {
  return {
    method: "POST",
    target,
    headers: [["host", "test"], ["prefer", "respond-async"], ["content-type", "text/plain"], ...headers],
    body: encode(body),
  };
}

/** A control API GET with the admin token. */
function apiGet(target: string): HttpRequest {
  return {
    method: "GET",
    target,
    headers: [
      ["host", "test"],
      ["authorization", `Bearer ${TEST_TOKEN}`],
    ],
    body: new Uint8Array(),
  };
}

const json = (res: HttpResponse) => JSON.parse(bodyText(res));
const header = (res: HttpResponse, name: string) => res.headers.find(([n]) => n === name)?.[1];
const errorCode = (res: HttpResponse) => json(res).error.code;

/** Messages stored for `fn` in the async stream. */
async function queued(fn: string): Promise<number> {
  const subject = ASYNC_SUBJECTS.invoke(fn);
  const info = await jsm.streams.info(STREAMS.async, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

async function lastQueued(fn: string): Promise<StoredMsg> {
  const msg = await jsm.streams.getMessage(STREAMS.async, { last_by_subj: ASYNC_SUBJECTS.invoke(fn) });
  if (!msg) throw new Error(`nothing queued for ${fn}`);
  return msg;
}

async function statusOf(id: string): Promise<InvocationStatus> {
  const status = await store.status(id);
  if (!status) throw new Error(`no status for ${id}`);
  return status;
}

describe("Prefer: respond-async", () => {
  it("is found among other preferences, in any case, in any Prefer header", () => {
    const prefers = (...values: string[]) => prefersAsync(values.map((v) => ["prefer", v]));
    expect(prefers("respond-async")).toBe(true);
    expect(prefers("wait=10, Respond-Async")).toBe(true);
    expect(prefers("return=minimal", "respond-async; foo=bar")).toBe(true);
    expect(prefers("wait=10")).toBe(false);
    expect(prefers('handling="lenient,respond-async"')).toBe(false);
    expect(prefers("respond-asynchronously")).toBe(false);
    expect(prefersAsync([["x-prefer", "respond-async"]])).toBe(false);
  });
});

describe("accepting an async invocation", () => {
  it("answers 202 only once the status and the message are stored", async () => {
    const res = await cluster.gateway.handle(asyncPost("/fn/accept/some/path?q=1", "hello"));
    expect(res.status).toBe(202);
    const id = header(res, "x-hearth-id") as string;
    expect(id).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(header(res, "location")).toBe(`/v1/invocations/${id}`);
    expect(header(res, "preference-applied")).toBe("respond-async");
    expect(json(res)).toEqual({ id, status: "queued", statusUrl: `http://test/v1/invocations/${id}` });

    // No polling: both are there the moment the 202 is.
    expect(await statusOf(id)).toMatchObject({ id, function: "accept", state: "queued", attempts: 0 });
    const msg = await lastQueued("accept");
    expect(msg.header.get(ASYNC_HEADERS.id)).toBe(id);
    expect(Number(msg.header.get(ASYNC_HEADERS.acceptedAt))).toBeGreaterThan(Date.now() - 60_000);
    const head = JSON.parse(msg.header.get(ASYNC_HEADERS.request)) as RequestHead;
    expect(head).toMatchObject({ method: "POST", url: "http://test/some/path?q=1" });
    expect(head.headers).toContainEqual(["x-forwarded-prefix", "/fn/accept"]);
    expect(msg.string()).toBe("hello");
  });

  it("shows the status at GET /v1/invocations/<id>, with the token only", async () => {
    const id = json(await cluster.gateway.handle(asyncPost("/fn/accept/"))).id;
    const res = await cluster.gateway.handle(apiGet(`/v1/invocations/${id}`));
    expect(res.status).toBe(200);
    expect(json(res).invocation).toMatchObject({ id, function: "accept", state: "queued", attempts: 0 });
    const anonymous = await cluster.gateway.handle({ ...apiGet(`/v1/invocations/${id}`), headers: [["host", "test"]] });
    expect(anonymous.status).toBe(401);
  });

  it("answers 404 for an unknown or malformed invocation id", async () => {
    for (const id of ["AAAAAAAAAAAAAAAAAAAAAA", "not.an.id", "%2e%2e", "x/response/y"]) {
      const res = await cluster.gateway.handle(apiGet(`/v1/invocations/${id}`));
      expect([id, res.status]).toEqual([id, 404]);
    }
    expect(errorCode(await cluster.gateway.handle(apiGet("/v1/invocations/nope")))).toBe("ERR_INVOCATION_NOT_FOUND");
    const response = await cluster.gateway.handle(apiGet("/v1/invocations/nope/response"));
    expect([response.status, errorCode(response)]).toEqual([404, "ERR_INVOCATION_NOT_FOUND"]);
  });

  it("answers 404 for an unknown function and stores nothing", async () => {
    const res = await cluster.gateway.handle(asyncPost("/fn/ghost/"));
    expect([res.status, errorCode(res)]).toEqual([404, "ERR_FUNCTION_NOT_FOUND"]);
    expect(await queued("ghost")).toBe(0);
  });

  it("answers 413 for a body over the function's limit and stores nothing", async () => {
    const res = await cluster.gateway.handle(asyncPost("/fn/small/", "x".repeat(1025)));
    expect([res.status, errorCode(res)]).toEqual([413, "ERR_PAYLOAD_TOO_LARGE"]);
    expect(await queued("small")).toBe(0);
    expect((await cluster.gateway.handle(asyncPost("/fn/small/", "x".repeat(1024)))).status).toBe(202);
  });

  it("refuses a malformed Idempotency-Key or X-Callback-Url with 400 and stores nothing", async () => {
    const bad: HeaderPairs[] = [
      [["idempotency-key", ""]],
      [["idempotency-key", "has space"]],
      [["idempotency-key", "k".repeat(256)]],
      [["idempotency-key", "clé"]],
      [["x-callback-url", "/relative"]],
      [["x-callback-url", "ftp://example.com/x"]],
      [["x-callback-url", "https://user:secret@example.com/hook"]],
      [["x-callback-url", `https://example.com/${"a".repeat(2048)}`]],
    ];
    for (const headers of bad) {
      const res = await cluster.gateway.handle(asyncPost("/fn/bad-input/", "x", headers));
      expect([headers, res.status, errorCode(res)]).toEqual([headers, 400, "ERR_BAD_REQUEST"]);
    }
    expect(await queued("bad-input")).toBe(0);
  });

  it("stores a valid X-Callback-Url with the invocation", async () => {
    const url = "https://hooks.example.com/done?x=1";
    const res = await cluster.gateway.handle(asyncPost("/fn/bad-input/", "x", [["x-callback-url", url]]));
    expect(res.status).toBe(202);
    const { id } = json(res);
    expect((await statusOf(id)).callback).toEqual({ url, state: "pending", attempts: 0 });
    expect((await lastQueued("bad-input")).header.get(ASYNC_HEADERS.callback)).toBe(url);
  });

  it("a sync request (no Prefer) still runs synchronously and stores nothing, Idempotency-Key or not", async () => {
    for (const headers of [[], [["idempotency-key", "sync-key"]]] as HeaderPairs[]) {
      const res = await cluster.gateway.handle({ ...asyncPost("/fn/sync/"), headers: [["host", "test"], ...headers] });
      // No scheduler in this cluster: the sync path answers at once that nothing can run it.
      expect([res.status, errorCode(res), header(res, "preference-applied")]).toEqual([
        503,
        "ERR_NO_CAPACITY",
        undefined,
      ]);
    }
    expect(await queued("sync")).toBe(0);
  });
});

describe("Idempotency-Key", () => {
  it("the same key and payload get the same invocation, stored once", async () => {
    const key = [["idempotency-key", "order-1"]] as HeaderPairs;
    const first = await cluster.gateway.handle(asyncPost("/fn/keyed/?a=1", "same", key));
    const again = await cluster.gateway.handle(asyncPost("/fn/keyed/?a=1", "same", key));
    expect([first.status, again.status]).toEqual([202, 202]);
    expect(json(again).id).toBe(json(first).id);
    expect(header(first, "idempotent-replayed")).toBeUndefined();
    expect(header(again, "idempotent-replayed")).toBe("true");
    expect(await queued("keyed")).toBe(1);
    // Quoted as a structured-field string, it is the same key.
    const quoted = await cluster.gateway.handle(
      asyncPost("/fn/keyed/?a=1", "same", [["idempotency-key", '"order-1"']]),
    );
    expect(json(quoted).id).toBe(json(first).id);
  });

  it("the same key with another payload, path or method is refused with 422", async () => {
    const key = [["idempotency-key", "order-2"]] as HeaderPairs;
    expect((await cluster.gateway.handle(asyncPost("/fn/reused/", "one", key))).status).toBe(202);
    const others = [
      asyncPost("/fn/reused/", "two", key),
      asyncPost("/fn/reused/other", "one", key),
      { ...asyncPost("/fn/reused/", "one", key), method: "PUT" },
    ];
    for (const req of others) {
      const res = await cluster.gateway.handle(req);
      expect([res.status, errorCode(res)]).toEqual([422, "ERR_IDEMPOTENCY_KEY_REUSED"]);
    }
    expect(await queued("reused")).toBe(1);
  });

  it("concurrent requests with one key store one invocation: the others get 409 or its id", async () => {
    const key = [["idempotency-key", "race-1"]] as HeaderPairs;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => cluster.gateway.handle(asyncPost("/fn/race/", "same", key))),
    );
    const accepted = answers.filter((res) => res.status === 202);
    const busy = answers.filter((res) => res.status === 409);
    expect(accepted.length + busy.length).toBe(answers.length);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(new Set(accepted.map((res) => json(res).id)).size).toBe(1);
    for (const res of busy) {
      expect([errorCode(res), header(res, "retry-after")]).toEqual(["ERR_IDEMPOTENCY_IN_PROGRESS", "1"]);
    }
    expect(await queued("race")).toBe(1);
  });

  it("a claim left accepting by a gateway that died is taken over", async () => {
    const claim = await store.claim("stale", "stale-1", "a fingerprint", "AbandonedAbandonedAban", Date.now() - 60_000);
    expect(claim.kind).toBe("claimed");
    const res = await cluster.gateway.handle(asyncPost("/fn/stale/", "x", [["idempotency-key", "stale-1"]]));
    expect(res.status).toBe(202);
    expect(json(res).id).not.toBe("AbandonedAbandonedAban");
    expect(await queued("stale")).toBe(1);
    const again = await cluster.gateway.handle(asyncPost("/fn/stale/", "x", [["idempotency-key", "stale-1"]]));
    expect([again.status, json(again).id]).toEqual([202, json(res).id]);
  });
});

describe("results, as an executor stores them", () => {
  async function finished(body: Uint8Array): Promise<string> {
    const { id } = json(await cluster.gateway.handle(asyncPost("/fn/results/")));
    const response = await store.storeResponse(
      id,
      {
        status: 201,
        headers: [
          ["content-type", "application/octet-stream"],
          ["x-made-by", "results"],
          ["connection", "close"],
        ],
      },
      body,
    );
    const now = new Date().toISOString();
    const status = await statusOf(id);
    await store.putStatus({ ...status, state: "succeeded", attempts: 1, startedAt: now, finishedAt: now, response });
    return id;
  }

  it("a queued invocation's /response is 202 with its status", async () => {
    const { id } = json(await cluster.gateway.handle(asyncPost("/fn/results/")));
    const res = await cluster.gateway.handle(apiGet(`/v1/invocations/${id}/response`));
    expect([res.status, header(res, "x-hearth-id")]).toEqual([202, id]);
    expect(json(res).invocation).toMatchObject({ id, state: "queued" });
  });

  it("a small response is shown inline and served as HTTP at /response", async () => {
    const id = await finished(encode("done"));
    const view = json(await cluster.gateway.handle(apiGet(`/v1/invocations/${id}`))).invocation;
    expect(view).toMatchObject({ state: "succeeded", attempts: 1, finishedAt: expect.any(String) });
    expect(view.response).toEqual({
      status: 201,
      headers: [
        ["content-type", "application/octet-stream"],
        ["x-made-by", "results"],
        ["connection", "close"],
      ],
      bodyBytes: 4,
      body: Buffer.from("done").toString("base64"),
      bodyEncoding: "base64",
    });
    const res = await cluster.gateway.handle(apiGet(`/v1/invocations/${id}/response`));
    expect(res.status).toBe(201);
    expect(res.headers).toEqual([
      ["content-type", "application/octet-stream"],
      ["x-made-by", "results"],
      ["x-hearth-id", id],
    ]);
    expect(bodyText(res)).toBe("done");
  });

  it("a response over 64 KiB comes from the object store, and says so once it expired", async () => {
    const body = new Uint8Array(100 * 1024).map((_, i) => i % 251);
    const id = await finished(body);
    expect((await statusOf(id)).response?.bodyObject).toBe(id);
    const view = json(await cluster.gateway.handle(apiGet(`/v1/invocations/${id}`))).invocation;
    expect(view.response).toMatchObject({ bodyBytes: body.byteLength, bodyEncoding: "base64" });
    expect(Buffer.from(view.response.body, "base64").equals(Buffer.from(body))).toBe(true);
    const res = await cluster.gateway.handle(apiGet(`/v1/invocations/${id}/response`));
    expect(Buffer.from(res.body as Uint8Array).equals(Buffer.from(body))).toBe(true);

    await (await new Objm(cluster.nc).open(ASYNC_BUCKETS.results)).delete(id);
    const expired = json(await cluster.gateway.handle(apiGet(`/v1/invocations/${id}`))).invocation;
    expect(expired.response).toEqual({ status: 201, headers: expect.any(Array), bodyBytes: 102400, bodyExpired: true });
    expect((await cluster.gateway.handle(apiGet(`/v1/invocations/${id}/response`))).status).toBe(404);
  });

  it("a failure without a response is answered at /response as the sync call would have been", async () => {
    const { id } = json(await cluster.gateway.handle(asyncPost("/fn/results/")));
    const error = { code: "ERR_FUNCTION_TIMEOUT", message: "ran past 30000 ms" };
    await store.putStatus({ ...(await statusOf(id)), state: "failed", attempts: 3, error, deadLettered: true });
    const res = await cluster.gateway.handle(apiGet(`/v1/invocations/${id}/response`));
    expect([res.status, json(res).error, header(res, "x-hearth-id")]).toEqual([504, error, id]);
  });
});

describe("async policy at deploy", () => {
  it("is stored with the function, outside its version, and checked against its bounds", async () => {
    const plain = await cluster.hearth.deploy("policy", { code: CODE });
    const withPolicy = await cluster.hearth.deploy("policy", { code: CODE, async: { retries: 0, maxEventAgeS: 60 } });
    expect(withPolicy.async).toEqual({ retries: 0, maxEventAgeS: 60 });
    expect(withPolicy.version).toBe(plain.version);
    const refused: Array<[object, string]> = [
      [{ retries: 11 }, "async.retries must be an integer from 0 to 10, got 11"],
      [{ maxEventAgeS: 59 }, "async.maxEventAgeS must be an integer from 60 to 21600, got 59"],
      [{ retry: 1 }, "async may only hold retries and maxEventAgeS, got retry"],
    ];
    for (const [policy, message] of refused) {
      await expect(cluster.hearth.deploy("policy", { code: CODE, async: policy })).rejects.toMatchObject({
        status: 400,
        code: "ERR_BAD_REQUEST",
        message,
      });
    }
  });

  it("hearth deploy --retries --max-event-age sets it", async () => {
    const entry = fileURLToPath(new URL("./fixtures/echo.ts", import.meta.url));
    const args = ["deploy", entry, "--name", "policy-cli", "--retries", "5", "--max-event-age", "3600", "--json"];
    const cli = await runCli(args, cliEnv);
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout).async).toEqual({ retries: 5, maxEventAgeS: 3600 });
  });
});

describe("CLI", () => {
  it("hearth invoke --async prints the id; hearth invocation shows it", async () => {
    const plain = await runCli(["invoke", "cli", "--async", "--data", "hi"], cliEnv);
    expect(plain.code, plain.stderr).toBe(0);
    const id = plain.stdout.trim();
    expect(await statusOf(id)).toMatchObject({ function: "cli", state: "queued" });
    expect((await lastQueued("cli")).string()).toBe("hi");

    const keyed = ["invoke", "cli", "--async", "--data", "k", "--idempotency-key", "cli-1", "--json"];
    const first = JSON.parse((await runCli(keyed, cliEnv)).stdout);
    expect(first).toMatchObject({ id: expect.any(String), status: "queued", replayed: false });
    expect(first.statusUrl).toBe(`${cluster.gateway.url}/v1/invocations/${first.id}`);
    expect(JSON.parse((await runCli(keyed, cliEnv)).stdout)).toMatchObject({ id: first.id, replayed: true });

    const shown = await runCli(["invocation", id], cliEnv);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`${id}  cli  queued  (0 attempts)`);
    expect(shown.stdout).toMatch(/accepted\s+\d{4}-/);
    expect(JSON.parse((await runCli(["invocation", id, "--json"], cliEnv)).stdout)).toMatchObject({
      id,
      state: "queued",
    });

    const missing = await runCli(["invocation", "nope"], cliEnv);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining("ERR_INVOCATION_NOT_FOUND")]);
    const misuse = await runCli(["invoke", "cli", "--callback", "https://example.com/"], cliEnv);
    expect(misuse.code).toBe(2);
  });
});

// Last: it stops nats-server under everything else.
describe("while NATS is down", () => {
  it("an async invocation, and a status read, are answered 503 with Retry-After at once", async () => {
    const { id } = json(await cluster.gateway.handle(asyncPost("/fn/accept/")));
    await cluster.nats.kill();
    await expect
      .poll(async () => json(await cluster.gateway.handle(apiGet("/readyz"))).reasons)
      .toContain("not connected to NATS");
    for (const req of [asyncPost("/fn/accept/"), apiGet(`/v1/invocations/${id}`), apiGet("/v1/dlq")]) {
      const sent = performance.now();
      const res = await cluster.gateway.handle(req);
      expect(performance.now() - sent).toBeLessThan(100);
      expect([res.status, errorCode(res), header(res, "retry-after")]).toEqual([503, "ERR_UNAVAILABLE", "1"]);
    }
  });
});
