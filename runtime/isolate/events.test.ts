import { describe, expect, it } from "vitest";
import { isolateFor, isolatesPerTest, requestJson, text } from "../../test/support/isolate.ts";
import {
  decodeQueueOutcome,
  decodeScheduledOutcome,
  encodeQueueEvent,
  encodeScheduledEvent,
  type QueueMessageInput,
  type QueueResult,
} from "./events.ts";
import type { FunctionIsolate, InvokeOutcome } from "./function-isolate.ts";

const { start } = isolatesPerTest();
const encoder = new TextEncoder();
const SENT_AT = 1_700_000_000_123;

function message(id: string, body: string | Uint8Array, extra: Partial<QueueMessageInput> = {}): QueueMessageInput {
  return {
    id,
    timestamp: SENT_AT,
    attempts: 1,
    body: typeof body === "string" ? encoder.encode(body) : body,
    ...extra,
  };
}

/** Four JSON messages m1–m4 with bodies {n: 1} … {n: 4}. */
const FOUR = ["m1", "m2", "m3", "m4"].map((id, i) => message(id, JSON.stringify({ n: i + 1 })));

async function deliver(isolate: FunctionIsolate, messages: QueueMessageInput[], id = "inv-q"): Promise<QueueResult> {
  const { requestJson, body } = encodeQueueEvent("jobs", messages);
  const outcome = await isolate.invoke(id, requestJson, body);
  return decodeQueueOutcome(
    outcome,
    messages.map((m) => m.id),
  );
}

async function tick(isolate: FunctionIsolate, cron = "*/5 * * * *", scheduledTime = SENT_AT) {
  const { requestJson, body } = encodeScheduledEvent(cron, scheduledTime);
  return decodeScheduledOutcome(await isolate.invoke("inv-s", requestJson, body));
}

describe("queue(batch, env, ctx): what becomes of each message", () => {
  it("acks or retries each message as the handler says, with its delay, and acks the undecided", async () => {
    const { isolate } = await start(`export default {
      queue(batch) {
        for (const m of batch.messages) {
          if (m.body.n === 1) m.ack();
          if (m.body.n === 2) m.retry({ delaySeconds: 30 });
          if (m.body.n === 3) m.retry();
        }
      },
    };`);
    expect(await deliver(isolate, FOUR)).toEqual({
      decisions: [
        { id: "m1", action: "ack" },
        { id: "m2", action: "retry", delaySeconds: 30 },
        { id: "m3", action: "retry" },
        { id: "m4", action: "ack" },
      ],
    });
  });

  it("the first decision per message wins; ackAll and retryAll decide only the messages still open", async () => {
    const { isolate } = await start(`export default {
      async queue(batch) {
        const [m1, m2, m3] = batch.messages;
        m1.ack();
        m1.retry();
        m2.retry({ delaySeconds: 5 });
        m2.ack();
        batch.ackAll();
        batch.retryAll();
        m3.retry();
      },
    };`);
    expect((await deliver(isolate, FOUR)).decisions).toEqual([
      { id: "m1", action: "ack" },
      { id: "m2", action: "retry", delaySeconds: 5 },
      { id: "m3", action: "ack" },
      { id: "m4", action: "ack" },
    ]);
  });

  it("retryAll first retries every message, and later acks change nothing", async () => {
    const { isolate } = await start(`export default {
      queue(batch) { batch.retryAll({ delaySeconds: 60 }); batch.messages[0].ack(); batch.ackAll(); },
    };`);
    expect((await deliver(isolate, FOUR.slice(0, 2))).decisions).toEqual([
      { id: "m1", action: "retry", delaySeconds: 60 },
      { id: "m2", action: "retry", delaySeconds: 60 },
    ]);
  });

  it("a throw retries the undecided messages, keeps the explicit decisions, and carries the error", async () => {
    const { isolate } = await start(`export default {
      async queue(batch) {
        batch.messages[0].ack();
        batch.messages[1].retry({ delaySeconds: 10 });
        await null;
        throw new TypeError("boom");
      },
    };`);
    const result = await deliver(isolate, FOUR.slice(0, 3));
    expect(result.decisions).toEqual([
      { id: "m1", action: "ack" },
      { id: "m2", action: "retry", delaySeconds: 10 },
      { id: "m3", action: "retry" },
    ]);
    expect(result.error).toMatchObject({ code: "ERR_FUNCTION_THREW", name: "TypeError", message: "boom" });
    expect(result.error?.stack).toContain("boom");
  });

  it("a delaySeconds outside 0–43200 or not whole is a TypeError to the caller of retry()", async () => {
    const { isolate, console: lines } = await start(`export default {
      queue(batch) {
        const [m] = batch.messages;
        const errors = [];
        for (const delaySeconds of [-1, 43201, 1.5, "10", Number.NaN]) {
          try { m.retry({ delaySeconds }); } catch (err) { errors.push(err.name); }
          try { batch.retryAll({ delaySeconds }); } catch (err) { errors.push(err.name); }
        }
        console.log(errors.join(","));
        m.retry({ delaySeconds: 43200 });
      },
    };`);
    expect((await deliver(isolate, FOUR.slice(0, 1))).decisions).toEqual([
      { id: "m1", action: "retry", delaySeconds: 43200 },
    ]);
    await expect.poll(() => lines.length).toBe(1);
    expect(lines[0]?.message).toBe(Array(10).fill("TypeError").join(","));
  });
});

describe("queue(batch, env, ctx): what the handler sees", () => {
  it("bodies decode as JSON, else UTF-8 text, else bytes, as contentType allows; console lines carry the invocation id", async () => {
    const { isolate, console: lines } = await start(`export default {
      queue(batch) {
        const show = (v) => (v instanceof Uint8Array ? ["bytes", [...v]] : [typeof v, v]);
        console.log(JSON.stringify(batch.messages.map((m) => show(m.body))));
        console.log(JSON.stringify(batch.messages.map((m) => [m.bytes.length, m.bytes.buffer.byteLength])));
      },
    };`);
    await deliver(
      isolate,
      [
        message("a", '{"a":1}'),
        message("b", "[1,2]", { contentType: "json" }),
        message("c", "hello"),
        message("d", "42", { contentType: "text" }),
        message("e", new Uint8Array([0xff, 0xfe])),
        message("f", "abc", { contentType: "bytes" }),
        message("g", ""),
      ],
      "inv-bodies",
    );
    await expect.poll(() => lines.length).toBe(2);
    expect(JSON.parse(lines[0]?.message ?? "")).toEqual([
      ["object", { a: 1 }],
      ["object", [1, 2]],
      ["string", "hello"],
      ["string", "42"],
      ["bytes", [0xff, 0xfe]],
      ["bytes", [97, 98, 99]],
      ["string", ""],
    ]);
    // Each message's bytes are its own copy, not a view of the whole batch.
    expect(JSON.parse(lines[1]?.message ?? "")).toEqual([
      [7, 7],
      [5, 5],
      [5, 5],
      [2, 2],
      [2, 2],
      [3, 3],
      [0, 0],
    ]);
    expect(lines.map((line) => line.invocationId)).toEqual(["inv-bodies", "inv-bodies"]);
  });

  it("the batch has its queue name and frozen messages with id, attempts and a Date timestamp", async () => {
    const { isolate, console: lines } = await start(`export default {
      queue(batch) {
        const [m] = batch.messages;
        console.log(JSON.stringify({
          queue: batch.queue, frozen: Object.isFrozen(batch.messages), id: m.id, attempts: m.attempts,
          date: m.timestamp instanceof Date, time: m.timestamp.getTime(),
        }));
      },
    };`);
    await deliver(isolate, [message("m1", "{}", { attempts: 3 })]);
    await expect.poll(() => lines.length).toBe(1);
    expect(JSON.parse(lines[0]?.message ?? "")).toEqual({
      queue: "jobs",
      frozen: true,
      id: "m1",
      attempts: 3,
      date: true,
      time: SENT_AT,
    });
  });

  it("ctx.waitUntil works as for fetch: a rejection after the outcome is logged, not fatal", async () => {
    const { isolate, console: lines } = await start(`export default {
      queue(batch, env, ctx) { ctx.waitUntil(Promise.reject(new Error("late"))); ctx.passThroughOnException(); },
    };`);
    expect((await deliver(isolate, FOUR.slice(0, 1))).decisions).toEqual([{ id: "m1", action: "ack" }]);
    await expect.poll(() => lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ level: "error", message: expect.stringContaining("waitUntil promise rejected") });
  });

  it("a handler past its timeout gets every message retried, with the timeout as the error", async () => {
    const { isolate } = await start(
      `export default { queue(batch) { batch.ackAll(); return new Promise(() => {}); } };`,
      {
        timeoutMs: 200,
      },
    );
    const result = await deliver(isolate, FOUR.slice(0, 2));
    expect(result.decisions).toEqual([
      { id: "m1", action: "retry" },
      { id: "m2", action: "retry" },
    ]);
    expect(result.error?.code).toBe("ERR_FUNCTION_TIMEOUT");
  });
});

describe("scheduled(event, env, ctx)", () => {
  it("gets the cron and scheduled time, and succeeds with ok", async () => {
    const { isolate, console: lines } = await start(
      `export default {
      async scheduled(event, env, ctx) {
        ctx.waitUntil(Promise.resolve());
        console.log(JSON.stringify([event.type, event.cron, event.scheduledTime, env.GREETING]));
      },
    };`,
      { env: { GREETING: "hey" } },
    );
    expect(await tick(isolate, "0 * * * *", 1_700_000_400_000)).toEqual({ ok: true });
    await expect.poll(() => lines.length).toBe(1);
    expect(lines[0]).toEqual({
      level: "log",
      message: JSON.stringify(["scheduled", "0 * * * *", 1_700_000_400_000, "hey"]),
      invocationId: "inv-s",
    });
  });

  it("a throw fails the run with the error; noRetry() before it says not to retry", async () => {
    const { isolate } = await start(`export default {
      async scheduled(event) {
        if (event.cron === "quiet") event.noRetry();
        if (event.cron !== "fine") throw new RangeError("no " + event.cron);
      },
    };`);
    expect(await tick(isolate, "loud")).toMatchObject({
      ok: false,
      noRetry: false,
      error: { code: "ERR_FUNCTION_THREW", name: "RangeError", message: "no loud" },
    });
    expect(await tick(isolate, "quiet")).toMatchObject({ ok: false, noRetry: true, error: { message: "no quiet" } });
    expect(await tick(isolate, "fine")).toEqual({ ok: true });
  });
});

describe("which handlers a module has", () => {
  it("a fetch-only module serves fetch as before, and answers events with ERR_NO_HANDLER", async () => {
    const { isolate } = await start(`export default {
      async fetch(request) { return new Response("hi " + new URL(request.url).pathname, { status: 201 }); },
    };`);
    const out = await isolate.invoke("1", requestJson("http://fn.test/x"), null);
    expect(out.ok && [out.head.status, text(out.body)]).toEqual([201, "hi /x"]);
    const queued = await deliver(isolate, FOUR.slice(0, 2));
    expect(queued.decisions).toEqual([
      { id: "m1", action: "retry" },
      { id: "m2", action: "retry" },
    ]);
    expect(queued.error).toMatchObject({ code: "ERR_NO_HANDLER", message: "The function has no queue() handler" });
    expect(await tick(isolate)).toMatchObject({ ok: false, error: { code: "ERR_NO_HANDLER" } });
    expect(isolate.disposed).toBe(false);
  });

  it("a queue-only module loads, and a request to it is ERR_NO_HANDLER", async () => {
    const { isolate } = await start(`export default { queue() {} };`);
    expect(await isolate.invoke("1", requestJson(), null)).toMatchObject({
      ok: false,
      code: "ERR_NO_HANDLER",
      message: "The function has no fetch() handler",
    });
    expect((await deliver(isolate, FOUR.slice(0, 1))).decisions).toEqual([{ id: "m1", action: "ack" }]);
  });

  it("a module with none of fetch, queue and scheduled fails to load, naming the three", async () => {
    await expect(isolateFor(`export default { email() {} };`)).rejects.toMatchObject({
      code: "ERR_FUNCTION_INVALID",
      message: expect.stringMatching(/fetch.*queue.*scheduled/),
    });
  });
});

describe("outcomes function code tampered with", () => {
  it("a handler that replaces JSON.stringify gets every message retried as ERR_INVALID_RESPONSE", async () => {
    const { isolate } = await start(`export default {
      queue(batch) { batch.ackAll(); JSON.stringify = () => '{"outcomes":[{"id":"m1","action":"ack"}]}'; },
    };`);
    expect(await deliver(isolate, FOUR.slice(0, 2))).toMatchObject({
      decisions: [
        { id: "m1", action: "retry" },
        { id: "m2", action: "retry" },
      ],
      error: { code: "ERR_INVALID_RESPONSE" },
    });
  });

  it("a handler that replaces Array.prototype.map gets every message retried as ERR_INVALID_RESPONSE", async () => {
    const { isolate } = await start(`export default {
      queue(batch) { batch.ackAll(); Array.prototype.map = function () { return [{ id: "other", action: "ack" }]; }; },
    };`);
    expect(await deliver(isolate, FOUR.slice(0, 1))).toMatchObject({
      decisions: [{ id: "m1", action: "retry" }],
      error: { code: "ERR_INVALID_RESPONSE" },
    });
  });

  const ok = (json: unknown): InvokeOutcome => ({
    ok: true,
    head: { status: 200, headers: [["content-type", "application/json"]] },
    body: encoder.encode(typeof json === "string" ? json : JSON.stringify(json)),
  });

  it.each([
    ["not JSON", "nope"],
    ["no outcomes", {}],
    ["too few decisions", { outcomes: [{ id: "a", action: "ack" }] }],
    [
      "ids out of order",
      {
        outcomes: [
          { id: "b", action: "ack" },
          { id: "a", action: "ack" },
        ],
      },
    ],
    [
      "an unknown action",
      {
        outcomes: [
          { id: "a", action: "ack" },
          { id: "b", action: "drop" },
        ],
      },
    ],
    [
      "a delay past 12 hours",
      {
        outcomes: [
          { id: "a", action: "ack" },
          { id: "b", action: "retry", delaySeconds: 43_201 },
        ],
      },
    ],
    [
      "an error without a message",
      {
        outcomes: [
          { id: "a", action: "ack" },
          { id: "b", action: "ack" },
        ],
        error: { name: "Error" },
      },
    ],
  ])("the host decodes %s as retry-all", (_, json) => {
    expect(decodeQueueOutcome(ok(json), ["a", "b"])).toMatchObject({
      decisions: [
        { id: "a", action: "retry" },
        { id: "b", action: "retry" },
      ],
      error: { code: "ERR_INVALID_RESPONSE" },
    });
  });

  it("the host keeps only known fields of a well-formed outcome", () => {
    const decoded = decodeQueueOutcome(ok({ outcomes: [{ id: "a", action: "ack", extra: 1 }] }), ["a"]);
    expect(decoded).toStrictEqual({ decisions: [{ id: "a", action: "ack" }] });
  });

  it("the host decodes a malformed scheduled outcome as a failed run that may be retried", () => {
    for (const json of ["nope", { ok: "yes" }, { ok: false, noRetry: true }]) {
      expect(decodeScheduledOutcome(ok(json))).toMatchObject({
        ok: false,
        noRetry: false,
        error: { code: "ERR_INVALID_RESPONSE" },
      });
    }
  });
});
