/** Cron triggers: expressions, and the ticker every scheduler process runs to publish their ticks. */

export type { CronSchedule, ParseCronOptions } from "./cron-expression.ts";
export { parseCron } from "./cron-expression.ts";
export type { CronPublish, CronTickerOptions, CronTickerStats, CronTriggerSpec } from "./cron-ticker.ts";
export { CronTicker } from "./cron-ticker.ts";
export { publishToJetStream } from "./publish.ts";
