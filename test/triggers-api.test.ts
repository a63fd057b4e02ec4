import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSUMERS, TriggerStore } from "../protocol/index.ts";
import type { HearthApiError } from "../sdk/index.ts";
import { runCli } from "./support/cli.ts";
import { type InProcessCluster, startInProcessCluster, TEST_TOKEN } from "./support/in-process.ts";

/** `/v1/triggers` and `hearth triggers`: definitions are checked, stored, listed with secrets masked, removed. */
let cluster: InProcessCluster;
let store: TriggerStore;

beforeAll(async () => {
  cluster = await startInProcessCluster({ worker: false });
  store = await TriggerStore.open(cluster.nc);
  await cluster.hearth.deploy("handler", { code: `export default { queue() {} };` });
  const jsm = await jetstreamManager(cluster.nc);
  await jsm.streams.add({
    name: "EVENTS",
    subjects: ["events.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
  });
});

afterAll(async () => {
  await cluster?.close();
});

async function refusal(options: Parameters<typeof cluster.hearth.addTrigger>[1], fn = "handler") {
  const before = await store.list();
  const err = await cluster.hearth.addTrigger(fn, options).then(
    () => null,
    (e: unknown) => e as HearthApiError,
  );
  expect(await store.list()).toEqual(before); // nothing stored
  return err ? { status: err.status, code: err.code, message: err.message } : null;
}

describe("triggers API", () => {
  it("adds a RabbitMQ trigger, shows it with the password masked, and removes it", async () => {
    const trigger = await cluster.hearth.addTrigger("handler", {
      source: "amqp://app:s3cret@127.0.0.1:5672/orders",
      batchSize: 20,
      retries: 5,
    });
    expect(trigger).toMatchObject({
      function: "handler",
      batchSize: 20,
      retries: 5,
      batchWaitMs: 0,
      maxConcurrency: 10,
    });
    expect(trigger.source).toBe("amqp://app:***@127.0.0.1:5672/orders");
    expect(trigger.id).toMatch(/^t[a-z0-9]+$/);
    // Stored with its credentials (the ingesters need them), shown without.
    expect((await store.get(trigger.id))?.source).toMatchObject({
      kind: "amqp",
      url: "amqp://app:s3cret@127.0.0.1:5672",
    });
    expect((await cluster.hearth.triggers("handler")).map((t) => t.id)).toContain(trigger.id);
    expect(JSON.stringify(await cluster.hearth.triggers())).not.toContain("s3cret");
    await cluster.hearth.removeTrigger(trigger.id);
    expect(await store.get(trigger.id)).toBeNull();
    await expect(cluster.hearth.removeTrigger(trigger.id)).rejects.toMatchObject({
      status: 404,
      code: "ERR_NOT_FOUND",
    });
  });

  it("creates a jetstream:// trigger's consumer at once, reading from now on, and deletes it with the trigger", async () => {
    const trigger = await cluster.hearth.addTrigger("handler", { source: "jetstream://EVENTS/events.orders" });
    const jsm = await jetstreamManager(cluster.nc);
    const consumer = await jsm.consumers.info("EVENTS", CONSUMERS.trigger(trigger.id));
    expect(consumer.config).toMatchObject({
      filter_subject: "events.orders",
      deliver_policy: "new",
      ack_policy: "explicit",
    });
    expect(consumer.config.max_ack_pending).toBe(100); // maxConcurrency 10 × batchSize 10
    await cluster.hearth.removeTrigger(trigger.id);
    await expect(jsm.consumers.info("EVENTS", CONSUMERS.trigger(trigger.id))).rejects.toThrow();
  });

  it("takes a 5-field cron expression", async () => {
    const trigger = await cluster.hearth.addTrigger("handler", { cron: "*/5 * * * MON-FRI" });
    expect(trigger.source).toBe("cron(*/5 * * * MON-FRI)");
    await cluster.hearth.removeTrigger(trigger.id);
  });

  it("refuses bad definitions with a clear error and stores nothing", async () => {
    expect(await refusal({ source: "kafka://broker/topic" })).toMatchObject({ status: 400, code: "ERR_BAD_REQUEST" });
    expect(await refusal({ source: "nats://hearth.x.>" })).toMatchObject({
      status: 400,
      message: expect.stringMatching(/Hearth's own/),
    });
    expect(await refusal({ source: "nats://events.a", cron: "* * * * *" })).toMatchObject({
      status: 400,
      message: expect.stringMatching(/exactly one/),
    });
    expect(await refusal({})).toMatchObject({ status: 400 });
    expect(await refusal({ cron: "61 * * * *" })).toMatchObject({ status: 400, code: "ERR_BAD_REQUEST" });
    expect(await refusal({ cron: "* * * * * *" })).toMatchObject({ status: 400 }); // seconds are not cron
    expect(await refusal({ source: "jetstream://NOPE/x" })).toMatchObject({
      status: 400,
      message: expect.stringMatching(/No JetStream stream NOPE/),
    });
    expect(await refusal({ source: "jetstream://HEARTH_ASYNC/hearth.async.handler" })).toMatchObject({ status: 400 });
    expect(await refusal({ source: "nats://events.a", batchSize: 0 })).toMatchObject({
      status: 400,
      message: expect.stringMatching(/batchSize/),
    });
    expect(await refusal({ source: "nats://events.a", batchSize: 101 })).toMatchObject({ status: 400 });
    expect(await refusal({ source: "nats://events.a", batchWaitMs: 60_001 })).toMatchObject({ status: 400 });
    expect(await refusal({ source: "nats://events.a" }, "nobody")).toMatchObject({
      status: 404,
      code: "ERR_FUNCTION_NOT_FOUND",
    });
    expect(await refusal({ source: "nats://events.a" }, "Bad_Name")).toMatchObject({
      status: 400,
      code: "ERR_INVALID_NAME",
    });
  });

  it("hearth triggers add, ls and rm", async () => {
    const env = { HEARTH_URL: cluster.gateway.url, HEARTH_TOKEN: TEST_TOKEN };
    const added = await runCli(
      ["triggers", "add", "handler", "--source", "nats://events.cli", "--batch-size", "3", "--json"],
      env,
    );
    expect(added.code).toBe(0);
    const { id } = JSON.parse(added.stdout) as { id: string };
    const listed = await runCli(["triggers", "ls", "handler"], env);
    expect(listed.stdout).toContain(id);
    expect(listed.stdout).toContain("nats://events.cli");
    expect((await runCli(["triggers", "rm", id], env)).code).toBe(0);
    const usage = await runCli(["triggers", "add", "handler"], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/exactly one of --source/);
  });
});
