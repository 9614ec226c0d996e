import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { isoNow, LineWriter } from './log-writer.ts';

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

/** The fields of one access line (SPEC §9); they never hold key material (test: ops.logs). */
export interface AccessFields {
  requestId: string;
  method: string;
  path: string;
  status: number;
  durationMs: number;
  upstreamMs?: number | null;
  tenantId?: string | null;
  keyId?: string | null;
  decision: string;
  listener?: 'public' | 'internal' | 'authz';
}

/** Writes one access line, or does nothing when access logging is off. */
export type AccessLog = (fields: AccessFields) => void;

export interface Loggers {
  /** Everything but access lines; redaction is the second net (keys are never passed to a logger). */
  logger: Logger;
  access: AccessLog;
  /** Resolves once every line so far is written (graceful shutdown). */
  drain(): Promise<void>;
  /** Lines dropped because the output could not keep up. */
  dropped(): number;
}

const INFO = pino.levels.values.info!;

/** Printable ASCII but `"` and `\`: what JSON writes as it is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** A JSON string (or null); a plain one without JSON.stringify's cost (ids, methods, canonical paths always are). */
const quoted = (s: string | null): string => (s === null ? 'null' : PLAIN.test(s) ? `"${s}"` : JSON.stringify(s));

/**
 * One access line, in the same JSON shape as pino's lines (and what JSON.stringify would write for `f`: absent
 * fields left out), built by hand: the fields are fixed and hold no secrets, so pino's generic per-line work
 * (serialiser lookups, redaction, formatters) and a generic stringify of the object are not needed.
 */
export function accessLine(f: AccessFields, time: string): string {
  let line = `{"level":"info","time":"${time}","service":"keygate","requestId":${quoted(f.requestId)},"method":${quoted(f.method)},"path":${quoted(f.path)},"status":${f.status},"durationMs":${f.durationMs}`;
  if (f.upstreamMs !== undefined) line += `,"upstreamMs":${f.upstreamMs}`;
  if (f.tenantId !== undefined) line += `,"tenantId":${quoted(f.tenantId)}`;
  if (f.keyId !== undefined) line += `,"keyId":${quoted(f.keyId)}`;
  line += `,"decision":${quoted(f.decision)}`;
  if (f.listener !== undefined) line += `,"listener":"${f.listener}"`;
  return `${line},"msg":"request"}\n`;
}

export function createLoggers(cfg: Config['logging'], fd = 1): Loggers {
  const writer = new LineWriter(fd);
  process.once('exit', () => writer.close());
  const logger = pino(
    {
      level: cfg.level,
      base: { service: 'keygate' },
      timestamp: () => `,"time":"${isoNow()}"`,
      formatters: { level: (label: string) => ({ level: label }) },
      redact: { paths: redactPaths, censor: '[redacted]' },
    },
    writer,
  );
  const on = cfg.accessLog && (pino.levels.values[cfg.level] ?? Infinity) <= INFO;
  const access: AccessLog = on ? (fields) => void writer.write(accessLine(fields, isoNow())) : () => {};
  return { logger, access, drain: () => writer.drain(), dropped: () => writer.dropped };
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
