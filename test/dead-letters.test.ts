import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeadLetterView } from "../control/index.ts";
import type { HttpRequest, HttpResponse } from "../gateway/index.ts";
import { ASYNC_HEADERS, ASYNC_SUBJECTS, AsyncStore, type InvocationStatus, STREAMS } from "../protocol/index.ts";
import { runCli } from "./support/cli.ts";
import { bodyText, type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

let cluster: InProcessCluster;
let store: AsyncStore;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  cluster = await startInProcessCluster({ worker: false, scheduler: false });
  store = await AsyncStore.open(cluster.nc);
  js = jetstream(cluster.nc);
  jsm = await jetstreamManager(cluster.nc);
});

afterAll(async () => {
  await cluster?.close();
});

/** Dead-letters a message as an executor does: its original headers and body plus the dead-letter headers. */
async function deadLetter(
  fn: string,
  options: { id?: string; trigger?: string; body?: string | Uint8Array; attempts?: number } = {},
): Promise<number> {
  const h = natsHeaders();
  h.set(ASYNC_HEADERS.function, fn);
  h.set(ASYNC_HEADERS.errorCode, "ERR_FUNCTION_THREW");
  h.set(ASYNC_HEADERS.errorMessage, "boom");
  h.set(ASYNC_HEADERS.attempts, String(options.attempts ?? 3));
  if (options.trigger) {
    h.set(ASYNC_HEADERS.trigger, options.trigger);
    h.set(ASYNC_HEADERS.origin, ASYNC_SUBJECTS.trigger(options.trigger));
  } else {
    h.set(ASYNC_HEADERS.origin, ASYNC_SUBJECTS.invoke(fn));
    if (options.id) h.set(ASYNC_HEADERS.id, options.id);
    h.set(ASYNC_HEADERS.request, JSON.stringify({ method: "POST", url: "http://test/", headers: [] }));
    h.set(ASYNC_HEADERS.acceptedAt, String(Date.now() - 3 * 24 * 60 * 60 * 1000));
  }
  const ack = await js.publish(ASYNC_SUBJECTS.deadLetter(fn), options.body ?? `body of ${fn}`, { headers: h });
  return ack.seq;
}

function api(method: string, target: string, body?: unknown): HttpRequest {
  return {
    method,
    target,
    headers: [
      ["host", "test"],
      ["authorization", `Bearer ${TEST_TOKEN}`],
    ],
    body: new TextEncoder().encode(body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body)),
  };
}

const json = (res: HttpResponse) => JSON.parse(bodyText(res));

async function list(query: string): Promise<{ deadLetters: DeadLetterView[]; next?: number }> {
  const res = await cluster.gateway.handle(api("GET", `/v1/dlq${query}`));
  expect(res.status, bodyText(res)).toBe(200);
  return json(res);
}

const replay = (body: unknown) => cluster.gateway.handle(api("POST", "/v1/dlq/replay", body));
const inDlq = async (seq: number) => (await jsm.streams.getMessage(STREAMS.deadLetters, { seq })) !== null;

describe("GET /v1/dlq", () => {
  it("lists one function's dead letters, oldest first, in pages", async () => {
    const seqs = [];
    for (let i = 0; i < 5; i++) seqs.push(await deadLetter("pages", { id: `PagesInvocation000000${i}` }));
    await deadLetter("pages-other");

    const first = await list("?function=pages&limit=2");
    expect(first.deadLetters.map((d) => d.seq)).toEqual(seqs.slice(0, 2));
    expect(first.next).toBe(seqs[1]);
    const second = await list(`?function=pages&limit=2&after=${first.next}`);
    expect(second.deadLetters.map((d) => d.seq)).toEqual(seqs.slice(2, 4));
    const last = await list(`?function=pages&limit=2&after=${second.next}`);
    expect(last.deadLetters.map((d) => d.seq)).toEqual(seqs.slice(4));
    expect(last.next).toBeUndefined();
    expect((await list(`?function=pages&after=${seqs[4]}`)).deadLetters).toEqual([]);

    expect(first.deadLetters[0]).toEqual({
      seq: seqs[0],
      function: "pages",
      id: "PagesInvocation0000000",
      origin: "hearth.async.pages",
      error: { code: "ERR_FUNCTION_THREW", message: "boom" },
      attempts: 3,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      bodyBytes: 13,
      body: Buffer.from("body of pages").toString("base64"),
    });
    const all = await list("?limit=1000");
    expect(all.deadLetters.map((d) => d.function)).toEqual(expect.arrayContaining(["pages", "pages-other"]));
  });

  it("shows a trigger event's trigger, and a body only up to 4 KiB", async () => {
    const seq = await deadLetter("events", { trigger: "orders", body: "x".repeat(4097) });
    const [shown] = (await list(`?function=events&after=${seq - 1}`)).deadLetters;
    expect(shown).toMatchObject({ seq, trigger: "orders", origin: "hearth.trigger.orders", bodyBytes: 4097 });
    expect(shown).not.toHaveProperty("body");
    expect(shown).not.toHaveProperty("id");
  });

  it("refuses a bad function name, limit or after", async () => {
    for (const query of ["?function=Bad_Name", "?limit=0", "?limit=1001", "?limit=x", "?after=-1", "?after=1.5"]) {
      const res = await cluster.gateway.handle(api("GET", `/v1/dlq${query}`));
      expect([query, res.status]).toEqual([query, 400]);
    }
  });
});

describe("POST /v1/dlq/replay", () => {
  it("puts chosen dead letters back on their origin without the dead-letter headers, out of the DLQ, and their statuses back to queued", async () => {
    const id = "ReplayedInvocation0001";
    const failed: InvocationStatus = {
      id,
      function: "replay",
      state: "failed",
      attempts: 3,
      acceptedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      error: { code: "ERR_FUNCTION_THREW", message: "boom" },
      deadLettered: true,
      callback: { url: "https://example.com/hook", state: "delivered", attempts: 1 },
    };
    await store.putStatus(failed);
    const chosen = await deadLetter("replay", { id, body: "original body" });
    const kept = await deadLetter("replay", { id: "KeptInvocation00000001" });
    const trigger = await deadLetter("replay", { trigger: "tick" });

    const res = await replay({ function: "replay", seqs: [chosen, trigger] });
    expect([res.status, json(res)]).toEqual([200, { replayed: 2 }]);

    const msg = await jsm.streams.getMessage(STREAMS.async, { last_by_subj: ASYNC_SUBJECTS.invoke("replay") });
    expect(msg?.string()).toBe("original body");
    expect(msg?.header.get(ASYNC_HEADERS.id)).toBe(id);
    expect(msg?.header.get("Nats-Msg-Id")).toBe(`replay:${chosen}`);
    expect(Number(msg?.header.get(ASYNC_HEADERS.acceptedAt))).toBeGreaterThan(Date.now() - 60_000);
    for (const name of ["function", "errorCode", "errorMessage", "attempts", "origin"] as const) {
      expect(msg?.header.has(ASYNC_HEADERS[name])).toBe(false);
    }
    const event = await jsm.streams.getMessage(STREAMS.triggers, { last_by_subj: ASYNC_SUBJECTS.trigger("tick") });
    expect(event?.header.get(ASYNC_HEADERS.trigger)).toBe("tick");

    expect([await inDlq(chosen), await inDlq(trigger), await inDlq(kept)]).toEqual([false, false, true]);
    const status = await store.status(id);
    expect(status).toMatchObject({ id, state: "queued", attempts: 0, error: failed.error });
    expect(status?.callback).toEqual({ url: "https://example.com/hook", state: "pending", attempts: 0 });
    expect(status).not.toHaveProperty("deadLettered");
    expect(status).not.toHaveProperty("finishedAt");
  });

  it("replays all of a function's dead letters when no seqs are given", async () => {
    const seqs = [await deadLetter("replay-all"), await deadLetter("replay-all")];
    const other = await deadLetter("replay-all-not");
    expect(json(await replay({ function: "replay-all" }))).toEqual({ replayed: 2 });
    expect(await Promise.all([...seqs, other].map(inDlq))).toEqual([false, false, true]);
    const info = await jsm.streams.info(STREAMS.async, { subjects_filter: ASYNC_SUBJECTS.invoke("replay-all") });
    expect(info.state.subjects?.[ASYNC_SUBJECTS.invoke("replay-all")]).toBe(2);
  });

  it("replays nothing on bad input, and says what is wrong", async () => {
    const mine = await deadLetter("strict");
    const theirs = await deadLetter("strict-other");
    const cases: Array<[unknown, number, string]> = [
      [{ function: "strict", seqs: [mine, theirs] }, 400, `Dead letter ${theirs} belongs to function strict-other`],
      [{ function: "strict", seqs: [mine, 999_999] }, 404, "No dead letter 999999"],
      [{ function: "strict", seqs: [String(mine)] }, 400, "seqs must be a list"],
      [{ function: "strict", seqs: [] }, 400, "seqs must be a list"],
      [{ function: "strict", seqs: [1.5] }, 400, "seqs must be a list"],
      [{ function: "Not_A_Name" }, 400, "Invalid function name"],
      [{ seqs: [mine] }, 400, "function is required"],
      ["not json", 400, "Body is not valid JSON"],
    ];
    for (const [body, status, message] of cases) {
      const res = await replay(body);
      expect([body, res.status, json(res).error.message]).toEqual([body, status, expect.stringContaining(message)]);
    }
    expect([await inDlq(mine), await inDlq(theirs)]).toEqual([true, true]);
    const info = await jsm.streams.info(STREAMS.async, { subjects_filter: ASYNC_SUBJECTS.invoke("strict") });
    expect(info.state.subjects?.[ASYNC_SUBJECTS.invoke("strict")] ?? 0).toBe(0);
    expect((await cluster.gateway.handle(api("GET", "/v1/dlq/replay"))).status).toBe(405);
  });
});

describe("CLI", () => {
  it("hearth dlq ls and hearth dlq replay", async () => {
    const env = { HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN };
    const seq = await deadLetter("cli-dlq", { id: "CliDeadLetter000000001" });
    const shown = await runCli(["dlq", "ls", "cli-dlq"], env);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`${seq}.*cli-dlq.*CliDeadLetter000000001.*ERR_FUNCTION_THREW: boom`));
    const listed = JSON.parse((await runCli(["dlq", "ls", "cli-dlq", "--json"], env)).stdout);
    expect(listed.deadLetters.map((d: DeadLetterView) => d.seq)).toEqual([seq]);

    const replayed = await runCli(["dlq", "replay", "cli-dlq", "--seq", String(seq)], env);
    expect([replayed.code, replayed.stdout.trim()]).toEqual([0, "✔ Replayed 1 dead letter of cli-dlq"]);
    expect(await inDlq(seq)).toBe(false);
    expect((await runCli(["dlq", "replay", "cli-dlq", "--seq", "x"], env)).code).toBe(2);
    expect((await runCli(["dlq", "frobnicate"], env)).code).toBe(2);
  });
});
