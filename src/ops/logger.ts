import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/schema.ts';

export type { Logger } from 'pino';

// Header and field names that may carry key material or secrets; pino replaces them wherever they appear.
const redactPaths = [
  'key',
  '*.key',
  'apiKey.key',
  'headers["x-api-key"]',
  'headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'token',
  '*.token',
];

export interface Loggers {
  /** Everything but access lines; redaction is the second net (keys are never passed to a logger). */
  logger: Logger;
  /**
   * One line per request, with a fixed set of fields that never holds key material (test: ops.logs), so it
   * skips the redaction pass, which is a measurable share of the hot path. Same destination, same format.
   */
  access: Logger;
}

export function createLoggers(cfg: Config['logging'], destination?: DestinationStream): Loggers {
  // Lines are gathered into 4 KiB writes (one write per line costs a thread-pool round trip each, measured at
  // tens of µs per request under load) and flushed at least every 250 ms and at exit.
  const dest = destination ?? pino.destination({ fd: 1, sync: false, minLength: 4096 });
  if (!destination) {
    const boom = dest as DestinationStream & { flush(): void; flushSync(): void };
    setInterval(() => boom.flush(), 250).unref();
    process.once('exit', () => boom.flushSync());
  }
  const base = {
    level: cfg.level,
    base: { service: 'keygate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return {
    logger: pino({ ...base, redact: { paths: redactPaths, censor: '[redacted]' } }, dest),
    access: pino(base, dest),
  };
}

/**
 * A warning that may fire on every request during an outage, logged at most once per `intervalMs` with the
 * number of repeats it stood for — so that an outage does not turn into a logging storm on top.
 */
export function throttledWarn(logger: Logger, msg: string, intervalMs = 1_000): (fields: Record<string, unknown>) => void {
  let last = 0;
  let repeats = 0;
  return (fields) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      repeats++;
      return;
    }
    logger.warn({ ...fields, repeats }, msg);
    last = now;
    repeats = 0;
  };
}
