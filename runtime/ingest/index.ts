/** Broker ingest for event triggers: RabbitMQ and MQTT messages moved into JetStream, acked at the source once stored. */

export type { AmqpIngesterOptions } from "./amqp-ingest.ts";
export { AmqpIngester, DEFAULT_AMQP_PREFETCH } from "./amqp-ingest.ts";
export type { IngestCounters, Ingester, IngesterOptions, IngestMessage } from "./ingest.ts";
export { DEFAULT_PUBLISH_TIMEOUT_MS, publishToTrigger, validateTriggerId } from "./ingest.ts";
export type { MqttIngesterOptions } from "./mqtt-ingest.ts";
export { MqttIngester } from "./mqtt-ingest.ts";
export { formatTriggerSource, maskPassword, parseTriggerSource } from "./parse-source.ts";
