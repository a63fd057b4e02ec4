import { connect, type NatsConnection } from "@nats-io/transport-node";

/**
 * Connects one Hearth process to NATS. Reconnects forever: components outlive NATS restarts, and
 * nats.js buffers publishes while reconnecting.
 *
 * `noAsyncTraces`: by default nats.js builds two Error objects (stack traces) for every request, in
 * case it fails; a CPU profile of the gateway under load put them at 20% of its time.
 */
export function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
}
