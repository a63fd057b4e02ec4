/**
 * One cron publisher process for test/cron.test.ts, as a scheduler process runs it: connects to
 * NATS_URL, ensures the streams, and ticks one trigger (HEARTH_CRON_TRIGGER, HEARTH_CRON_EXPRESSION,
 * seconds allowed) by a clock off by HEARTH_CRON_SKEW_MS. Writes pino JSON lines to stdout:
 * "cron publisher ready" once ticking, then the ticker's own "cron tick published" for each tick.
 * Exits on SIGTERM, or when its parent goes (the IPC channel closes).
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { ensureAsyncStreams } from "../../protocol/async-streams.ts";
import { createLogger } from "../../protocol/logger.ts";
import { CronTicker, parseCron, publishToJetStream } from "../../scheduler/cron/index.ts";

const skewMs = Number(process.env.HEARTH_CRON_SKEW_MS ?? "0");
const id = process.env.HEARTH_CRON_TRIGGER ?? "cron-test";
const expression = process.env.HEARTH_CRON_EXPRESSION ?? "* * * * * *";
const log = createLogger("cron-publisher", "debug").child({ skewMs });

const nc = await connect({ servers: process.env.NATS_URL, name: `cron-publisher${skewMs}` });
await ensureAsyncStreams(await jetstreamManager(nc));
const ticker = new CronTicker({
  publish: publishToJetStream(jetstream(nc)),
  now: () => Date.now() + skewMs,
  log,
  parse: (e) => parseCron(e, { allowSeconds: true }),
  triggers: [{ id, expression }],
});
ticker.start();
log.info("cron publisher ready");

let closing = false;
const shutdown = async () => {
  if (closing) return;
  closing = true;
  await ticker.close();
  await nc.drain();
  log.info({ stats: ticker.stats() }, "cron publisher stopped");
  process.exit(0);
};
process.once("SIGTERM", shutdown);
process.once("disconnect", shutdown);
