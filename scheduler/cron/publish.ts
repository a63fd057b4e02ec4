import type { JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { CronPublish } from "./cron-ticker.ts";

/**
 * A CronPublish into JetStream. The message is empty: the trigger and scheduled time travel in its
 * headers. `timeoutMs` bounds the wait for the stream's ack (default 5 s).
 */
export function publishToJetStream(js: JetStreamClient, timeoutMs = 5_000): CronPublish {
  return async (subject, pairs, msgID) => {
    const headers = natsHeaders();
    for (const [name, value] of Object.entries(pairs)) headers.set(name, value);
    const ack = await js.publish(subject, undefined, { msgID, headers, timeout: timeoutMs });
    return { duplicate: ack.duplicate };
  };
}
