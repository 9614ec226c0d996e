import { pino, type Logger } from 'pino';
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

/** JSON lines on stdout (SPEC §9). Keys are never passed to the logger; the redaction is the second net. */
export function createLogger(cfg: Config['logging'], destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level: cfg.level,
      base: { service: 'keygate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
