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

/**
 * The fields of one access line (docs/logging.md); they never hold key material (test: ops.logs). Optional
 * fields are left out when absent; the order here is the order on the line.
 */
export interface AccessFields {
  requestId: string;
  method: string;
  path: string;
  status: number;
  /** From the request's arrival to the end of its response. */
  durationMs: number;
  /** keygate's own share: until the request was handed to the upstream, or all of it when keygate answered. */
  keygateMs?: number;
  upstreamStatus?: number | null;
  upstreamMs?: number | null;
  /** The client's address as derived from server.trustedProxies (the socket peer otherwise). */
  clientIp?: string;
  userAgent?: string | null;
  /** Body bytes received from the client and sent to it. */
  requestBytes?: number;
  responseBytes?: number;
  tenantId?: string | null;
  keyId?: string | null;
  /** allowed | refused (keygate answered a 4xx) | failed (keygate answered a 5xx) | preflight | open. */
  decision: string;
  /** The error code keygate answered with, when it did. */
  code?: string | null;
  listener?: 'public' | 'internal' | 'authz';
  /** `websocket` on an upgrade's line (its session, once over, has a line of its own: SessionFields). */
  upgrade?: 'websocket';
  /** W3C trace context ids of keygate's span (tracing on), named as OpenTelemetry's log data model names them. */
  trace_id?: string;
  span_id?: string;
}

/** Writes one access line, or does nothing when access logging is off. */
export type AccessLog = (fields: AccessFields) => void;

/**
 * The line a proxied WebSocket session writes when it ends (docs/logging.md), joined to its upgrade's access line
 * by `requestId` and `trace_id`: how long it lasted, how it ended, and what moved each way.
 */
export interface SessionFields {
  requestId: string;
  path: string;
  clientIp: string;
  tenantId: string;
  keyId: string;
  /** From the 101 to the end of the session. */
  durationMs: number;
  /** The close code of the side that closed first (or keygate's, when keygate ended it), and its reason. */
  closeCode: number;
  closeReason: string;
  /** Who ended the session: the client, the upstream, or keygate (key revoked, quota, shutdown, a failure). */
  closedBy: 'client' | 'upstream' | 'keygate';
  /** Messages and their payload bytes, from the client to the upstream and back. */
  clientMessages: number;
  clientBytes: number;
  upstreamMessages: number;
  upstreamBytes: number;
  trace_id?: string;
  span_id?: string;
}

/** Writes one session line, or does nothing when access logging is off. */
export type SessionLog = (fields: SessionFields) => void;

export interface Loggers {
  /** Everything but access lines; redaction is the second net (keys are never passed to a logger). */
  logger: Logger;
  access: AccessLog;
  sessionLog: SessionLog;
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
  let line = `{"level":"info","timestamp":"${time}","service":"keygate","requestId":${quoted(f.requestId)},"method":${quoted(f.method)},"path":${quoted(f.path)},"status":${f.status},"durationMs":${f.durationMs}`;
  if (f.keygateMs !== undefined) line += `,"keygateMs":${f.keygateMs}`;
  if (f.upstreamStatus !== undefined) line += `,"upstreamStatus":${f.upstreamStatus}`;
  if (f.upstreamMs !== undefined) line += `,"upstreamMs":${f.upstreamMs}`;
  if (f.clientIp !== undefined) line += `,"clientIp":${quoted(f.clientIp)}`;
  if (f.userAgent !== undefined) line += `,"userAgent":${quoted(f.userAgent)}`;
  if (f.requestBytes !== undefined) line += `,"requestBytes":${f.requestBytes}`;
  if (f.responseBytes !== undefined) line += `,"responseBytes":${f.responseBytes}`;
  if (f.tenantId !== undefined) line += `,"tenantId":${quoted(f.tenantId)}`;
  if (f.keyId !== undefined) line += `,"keyId":${quoted(f.keyId)}`;
  line += `,"decision":${quoted(f.decision)}`;
  if (f.code !== undefined) line += `,"code":${quoted(f.code)}`;
  if (f.listener !== undefined) line += `,"listener":"${f.listener}"`;
  if (f.upgrade !== undefined) line += `,"upgrade":"${f.upgrade}"`;
  if (f.trace_id !== undefined) line += `,"trace_id":"${f.trace_id}","span_id":"${f.span_id}"`;
  return `${line},"msg":"request"}\n`;
}

/** A session's line: one per session, so a generic stringify is cheap enough (the close reason is the peer's text). */
export function sessionLine(f: SessionFields, time: string): string {
  const fields = JSON.stringify({ ...f, msg: 'websocket session' });
  return `{"level":"info","timestamp":"${time}","service":"keygate",${fields.slice(1)}\n`;
}

export function createLoggers(cfg: Config['logging'], fd = 1): Loggers {
  const writer = new LineWriter(fd);
  process.once('exit', () => writer.close());
  const logger = pino(
    {
      level: cfg.level,
      base: { service: 'keygate' },
      // `timestamp` (ISO 8601) and a `level` word: what Datadog, Vector and Loki read without configuration
      // (docs/logging.md).
      timestamp: () => `,"timestamp":"${isoNow()}"`,
      formatters: { level: (label: string) => ({ level: label }) },
      redact: { paths: redactPaths, censor: '[redacted]' },
    },
    writer,
  );
  const on = cfg.accessLog && (pino.levels.values[cfg.level] ?? Infinity) <= INFO;
  const access: AccessLog = on ? (fields) => void writer.write(accessLine(fields, isoNow())) : () => {};
  const sessionLog: SessionLog = on ? (fields) => void writer.write(sessionLine(fields, isoNow())) : () => {};
  return { logger, access, sessionLog, drain: () => writer.drain(), dropped: () => writer.dropped };
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
