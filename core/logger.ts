/**
 * Structured logs: one JSON object per line on stdout (pino). Writes are
 * asynchronous so that logging never blocks a request; pino flushes on exit.
 */
import { pino } from 'pino';
import type { Logger } from './contract/plugin-api.js';

export type AgentLogger = pino.Logger;

export function createLogger(level: string): AgentLogger {
  return pino(
    {
      level,
      base: { name: 'hyperkern' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: false }),
  );
}

/** The plugin-facing subset of a pino logger. */
export function asPluginLogger(log: AgentLogger): Logger {
  return log as unknown as Logger;
}
