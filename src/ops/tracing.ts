import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { BlockList } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { Logger } from './logger.ts';

// OpenTelemetry tracing (docs/tracing.md), as a port the request path calls through. The SDK lives in
// tracing-sdk.ts and is imported only when `tracing.enabled` is true: with tracing off no OpenTelemetry module
// is loaded, `RequestScope.trace` stays null, and the request path pays one null check at each hook.

/** What one HTTP request (or WebSocket handshake) records: keygate's server span and its children. */
export interface RequestTrace {
  /** Hex ids of the server span, for the access line and the latency histogram's exemplar. */
  readonly traceId: string;
  readonly spanId: string;
  /** Whether the span is sampled (recorded and exported): only then is it worth an exemplar. */
  readonly sampled: boolean;
  /** Runs the gate under its span: the store round trips it makes become that span's children. */
  gate(work: () => void): void;
  /** The gate decided: `decision` is "allowed" or the refusal's code. */
  decided(decision: string, tenantId: string | null, keyId: string | null): void;
  /** The upstream exchange starts: its client span is opened and `headers` (a flat list) carry it as parent. */
  upstream(method: string, url: string, headers: string[]): void;
  /** The same for a header object (the WebSocket dial). */
  upstreamFields(method: string, url: string, headers: Record<string, string>): void;
  /** The upstream's response head arrived. */
  upstreamHead(status: number): void;
  /** The upstream exchange is over (`error`: the kind of failure, when it failed). */
  upstreamEnd(error?: string): void;
  /** The response is over: the server span ends with its status and, for keygate's own error answers, the code. */
  end(status: number, code: string | null, route: string | null, door: string, clientIp: string): void;
}

/** A WebSocket session's life: one span, with messages and bytes counted as attributes (not a span per frame). */
export interface SessionTrace {
  /** The session is over: `code` and `reason` of its close, what it carried from the client and from the upstream. */
  end(code: number, reason: string, client: Carried, upstream: Carried): void;
}

/** Messages and their payload bytes carried in one direction of a session. */
export interface Carried {
  readonly messages: number;
  readonly bytes: number;
}

export interface Tracing {
  /** Starts the server span of a request, continuing its `traceparent` when the peer is trusted. */
  request(req: IncomingMessage): RequestTrace;
  /** Starts the span of a proxied WebSocket session, child of its handshake's span; null when not sampled. */
  session(handshake: RequestTrace): SessionTrace | null;
  /** Wraps a cache miss's store read in a `keygate.key_lookup` span (when a request's span is current). */
  lookup<T>(work: () => Promise<T>): Promise<T>;
  /** Makes each command of this ioredis client a span, when it runs for a request being traced. */
  traceRedis(client: RedisLike): void;
  /** The handshake span of a WebSocket upgrade, by its socket (the upgrade path answers on the socket). */
  readonly upgrades: WeakMap<Duplex, RequestTrace>;
  /** Exports what is pending and stops (graceful shutdown). */
  shutdown(): Promise<void>;
}

/** The part of an ioredis client (standalone, Sentinel or Cluster) that every command passes through. */
export interface RedisLike {
  sendCommand(...args: unknown[]): unknown;
  options?: { host?: string; port?: number; db?: number };
}

export interface TracingOptions {
  config: Config['tracing'];
  /** Peers whose `traceparent` is continued (CIDRs compiled); null: none. */
  trustedPeers: BlockList | null;
  version: string;
  logger: Logger;
  upstreamUrl: string;
}

/** Loads the OpenTelemetry SDK and starts exporting, or returns null when tracing is off. */
export async function loadTracing(opts: TracingOptions): Promise<Tracing | null> {
  if (!opts.config.enabled) return null;
  const { createTracing } = await import('./tracing-sdk.ts');
  return createTracing(opts);
}
