import { connect, type NatsConnection } from "@nats-io/transport-node";

/**
 * Connects one Hearth process to NATS. Reconnects forever: components outlive NATS restarts, and
 * nats.js buffers publishes while reconnecting.
 */
export function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
}
