import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { ASYNC_SUBJECTS, STREAMS } from "./async.ts";

/** JetStream's default dedupe window; it only has to cover a gateway's or ingester's own publish retries. */
export const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;
/** Work-queue messages older than this are dropped by the server: over the longest max event age (6 h). */
const WORK_MAX_AGE_MS = 7 * 60 * 60 * 1000;
/** Dead letters are kept two weeks (Cloudflare Queues keeps messages 4 d by default, up to 14 d). */
const DEAD_LETTER_MAX_AGE_MS = 14 * 24 * 60 * 60 * 1000;

const STREAM_CONFIGS: ReadonlyArray<Partial<StreamConfig> & { name: string; subjects: string[] }> = [
  {
    name: STREAMS.async,
    subjects: [ASYNC_SUBJECTS.allInvocations],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    max_age: nanos(WORK_MAX_AGE_MS),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    discard: DiscardPolicy.Old,
  },
  {
    name: STREAMS.triggers,
    subjects: [ASYNC_SUBJECTS.allTriggers],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    max_age: nanos(WORK_MAX_AGE_MS),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    discard: DiscardPolicy.Old,
  },
  {
    name: STREAMS.deadLetters,
    subjects: [ASYNC_SUBJECTS.allDeadLetters],
    // Limits, not WorkQueue: dead letters are browsed and replayed, not consumed away.
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(DEAD_LETTER_MAX_AGE_MS),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    discard: DiscardPolicy.Old,
  },
];

/**
 * Creates Hearth's streams if they are missing; idempotent, so every process that publishes or
 * consumes calls it at start. A stream that exists with another configuration is left as it is.
 */
export async function ensureAsyncStreams(jsm: JetStreamManager): Promise<void> {
  await Promise.all(
    STREAM_CONFIGS.map(async (config) => {
      try {
        await jsm.streams.info(config.name);
      } catch {
        try {
          await jsm.streams.add(config);
        } catch (err) {
          // Another process created it between our info and add.
          if (!/already in use/i.test(String((err as Error).message))) throw err;
        }
      }
    }),
  );
}
