import type { JetStreamManager } from "@nats-io/jetstream";
import { type HttpRequest, type HttpResponse, jsonResponse } from "../gateway/http-types.ts";
import {
  ASYNC_SUBJECTS,
  CONSUMERS,
  type FunctionStore,
  HearthError,
  STREAMS,
  TRIGGER_DEFAULTS,
  type TriggerRecord,
  type TriggerSource,
  TriggerStore,
  validateFunctionName,
} from "../protocol/index.ts";
import { formatTriggerSource, parseTriggerSource } from "../runtime/ingest/parse-source.ts";
import { DEFAULT_ACK_WAIT_MS, ensureConsumer } from "../runtime/queue/pull-loop.ts";
import { triggerConsumerSpec } from "../runtime/queue/queue-consumers.ts";
import { parseCron } from "../scheduler/cron/cron-expression.ts";

export interface TriggersApiDeps {
  readonly functions: FunctionStore;
  readonly triggers: TriggerStore;
  readonly jsm: JetStreamManager;
  readonly now?: () => Date;
}

const TRIGGER_PATH = /^\/v1\/triggers\/([^/]+)$/;
/** Streams Hearth keeps for itself: a trigger on them would consume Hearth's own work. */
const OWN_STREAM = /^(HEARTH_|KV_|OBJ_)/;
const BOUNDS = {
  batchSize: [1, 100],
  batchWaitMs: [0, 60_000],
  maxConcurrency: [1, 1_000],
  retries: [0, 100],
} as const;

/** A trigger as the API shows it: the source as a URL with its password masked. */
export function describeTrigger(trigger: TriggerRecord): Omit<TriggerRecord, "source"> & { source: string } {
  return { ...trigger, source: formatTriggerSource(trigger.source) };
}

/** Routes `/v1/triggers[/<id>]`; null for other paths. Auth is checked by the caller. */
export async function handleTriggersApi(
  req: HttpRequest,
  path: string,
  deps: TriggersApiDeps,
): Promise<HttpResponse | null> {
  if (path === "/v1/triggers") {
    if (req.method === "GET") {
      const fn = new URLSearchParams(req.target.split("?")[1] ?? "").get("function");
      const all = await deps.triggers.list();
      return jsonResponse(200, { triggers: all.filter((t) => !fn || t.function === fn).map(describeTrigger) });
    }
    if (req.method === "POST") return jsonResponse(201, { trigger: describeTrigger(await create(req, deps)) });
    throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  }
  const match = TRIGGER_PATH.exec(path);
  if (!match) return null;
  const id = decodeURIComponent(match[1] ?? "");
  const trigger = await deps.triggers.get(id);
  if (!trigger) throw new HearthError("ERR_NOT_FOUND", `No trigger ${id}`);
  if (req.method === "GET") return jsonResponse(200, { trigger: describeTrigger(trigger) });
  if (req.method !== "DELETE")
    throw new HearthError("ERR_METHOD_NOT_ALLOWED", `${req.method} ${path} is not supported`);
  await deps.triggers.delete(id);
  await removeConsumers(deps.jsm, trigger);
  return jsonResponse(200, { deleted: id });
}

async function create(req: HttpRequest, deps: TriggersApiDeps): Promise<TriggerRecord> {
  return createTrigger(parseBody(req.body), deps);
}

/** Validates a trigger's definition (the body of `POST /v1/triggers`), sets it up and stores it. */
export async function createTrigger(body: Record<string, unknown>, deps: TriggersApiDeps): Promise<TriggerRecord> {
  const fn = validateFunctionName(requireString(body.function, "function"));
  if ((body.source === undefined) === (body.cron === undefined))
    throw new HearthError("ERR_BAD_REQUEST", "Give exactly one of `source` (a URL) and `cron` (an expression)");
  const source: TriggerSource =
    body.cron !== undefined
      ? { kind: "cron", expression: parseCron(requireString(body.cron, "cron")).expression }
      : parseTriggerSource(requireString(body.source, "source"));
  if (!(await deps.functions.get(fn)))
    throw new HearthError("ERR_FUNCTION_NOT_FOUND", `Function ${fn} is not deployed`);
  if (source.kind === "jetstream") await checkStream(deps.jsm, source.stream);
  const trigger: TriggerRecord = {
    id: TriggerStore.newId(),
    function: fn,
    source,
    batchSize: bounded(body.batchSize, "batchSize", TRIGGER_DEFAULTS.batchSize),
    batchWaitMs: bounded(body.batchWaitMs, "batchWaitMs", TRIGGER_DEFAULTS.batchWaitMs),
    maxConcurrency: bounded(body.maxConcurrency, "maxConcurrency", TRIGGER_DEFAULTS.maxConcurrency),
    retries: bounded(body.retries, "retries", TRIGGER_DEFAULTS.retries),
    createdAt: (deps.now?.() ?? new Date()).toISOString(),
  };
  // A stream source is read from now on: its consumer exists before the trigger is announced, so
  // a message published right after this answer is not missed while the function is cold.
  if (source.kind === "jetstream")
    await ensureConsumer(deps.jsm, triggerConsumerSpec(trigger, source.stream, source.subject, DEFAULT_ACK_WAIT_MS));
  await deps.triggers.put(trigger);
  return trigger;
}

/** A jetstream:// source must name an existing stream of the user's, not one of Hearth's. */
async function checkStream(jsm: JetStreamManager, stream: string): Promise<void> {
  if (OWN_STREAM.test(stream)) throw new HearthError("ERR_BAD_REQUEST", `Stream ${stream} is Hearth's own`);
  const info = await jsm.streams.info(stream).catch(() => null);
  if (!info) throw new HearthError("ERR_BAD_REQUEST", `No JetStream stream ${stream}: create it first`);
}

/** The trigger's consumers and its queued events go with it. */
async function removeConsumers(jsm: JetStreamManager, trigger: TriggerRecord): Promise<void> {
  const consumer = CONSUMERS.trigger(trigger.id);
  await jsm.consumers.delete(STREAMS.triggers, consumer).catch(() => false);
  await jsm.streams.purge(STREAMS.triggers, { filter: ASYNC_SUBJECTS.trigger(trigger.id) }).catch(() => null);
  if (trigger.source.kind === "jetstream")
    await jsm.consumers.delete(trigger.source.stream, consumer).catch(() => false);
}

function parseBody(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new HearthError("ERR_BAD_REQUEST", `Body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new HearthError("ERR_BAD_REQUEST", "Body must be a JSON object");
  return value as Record<string, unknown>;
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "")
    throw new HearthError("ERR_BAD_REQUEST", `\`${field}\` must be a non-empty string`);
  return value;
}

function bounded(value: unknown, field: keyof typeof BOUNDS, fallback: number): number {
  if (value === undefined) return fallback;
  const [min, max] = BOUNDS[field];
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    throw new HearthError(
      "ERR_BAD_REQUEST",
      `\`${field}\` must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  return value;
}
