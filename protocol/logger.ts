import { type Logger, pino } from "pino";

export type { Logger };

/** Process entry points own stdout; libraries receive a logger and default to this silent one. */
export function silentLogger(): Logger {
  return pino({ enabled: false });
}

/** The JSON logger of one Hearth process, its level from HEARTH_LOG_LEVEL (default info). */
export function createLogger(component: string, level = process.env.HEARTH_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { component, pid: process.pid } });
}
