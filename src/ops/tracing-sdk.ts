import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { defaultTextMapGetter, diag, DiagLogLevel, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type Sampler } from '@opentelemetry/sdk-trace';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import { contains } from '../http/client-ip.ts';
import { throttledWarn } from './logger.ts';
import type { RedisLike, RequestTrace, Tracing, TracingOptions } from './tracing.ts';

// The OpenTelemetry SDK behind the port in tracing.ts, loaded only when tracing is on. Spans are made
// explicitly where keygate knows what happens (no auto-instrumentation: it patches http and undici for the
// whole process and costs on every request). Attribute names follow the semantic conventions for HTTP servers
// and clients and for databases; keygate's own are `keygate.*`. A raw key never becomes an attribute: the URL
// is recorded without its query (where `api_key` and `token` travel on upgrades), Redis commands without their
// arguments, and headers not at all.

const propagator = new W3CTraceContextPropagator();
/** Span attribute values are cut to this length (a user agent may be as long as a header can be). */
const MAX_ATTRIBUTE_LENGTH = 256;
const TRACED = Symbol('keygate.traced');
const noop = () => {};

type Command = { name: string; promise: Promise<unknown>; [TRACED]?: true };

function samplerOf(cfg: TracingOptions['config']['sampler']): Sampler {
  const ratio = cfg.ratio;
  const root = ratio >= 1 ? new AlwaysOnSampler() : ratio <= 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio);
  return cfg.parentBased ? new ParentBasedSampler({ root }) : root;
}

/** A flat [name, value, ...] header list as a propagation carrier: a client's copies go, keygate's are added. */
function injectInto(list: string[], ctx: Context): void {
  for (let i = list.length - 2; i >= 0; i -= 2) {
    const name = list[i]!.toLowerCase();
    if (name === 'traceparent' || name === 'tracestate') list.splice(i, 2);
  }
  propagator.inject(ctx, list, pushHeader);
}

const pushHeader: TextMapSetter<string[]> = { set: (carrier, key, value) => void carrier.push(key, value) };
const setField: TextMapSetter<Record<string, string>> = { set: (carrier, key, value) => void (carrier[key] = value) };

/**
 * What a Redis command or a key lookup runs under, found through `active`: the span it is a child of, or null
 * when that span is over (the command runs for background work the request started).
 */
interface Parent {
  parentContext(): Context | null;
}

/** The request (or key lookup) that the code running now works for; only sampled requests enter it. */
const active = new AsyncLocalStorage<Parent>();

class Lookup implements Parent {
  readonly #span: Span;
  readonly #ctx: Context;
  constructor(span: Span, ctx: Context) {
    this.#span = span;
    this.#ctx = ctx;
  }
  parentContext(): Context | null {
    return this.#span.isRecording() ? this.#ctx : null;
  }
}

class Request implements RequestTrace, Parent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly #tracer: ReturnType<TracerProvider['getTracer']>;
  readonly #server: Span;
  readonly #ctx: Context;
  /** When the gate started (performance.now()), while it runs; -1 when it is not running. */
  #gateStart = -1;
  /** The gate's span, made only once something under it is worth recording (a store round trip, a refusal). */
  #gate: Span | null = null;
  #gateCtx: Context | null = null;
  #upstream: Span | null = null;
  #tenantId: string | null = null;
  #keyId: string | null = null;
  #ended = false;

  /** server.address and server.port of the upstream (one upstream per process, parsed once). */
  readonly #target: Attributes;

  readonly #peer: string;

  constructor(tracer: ReturnType<TracerProvider['getTracer']>, server: Span, ctx: Context, target: Attributes, peer: string) {
    this.#tracer = tracer;
    this.#peer = peer;
    this.#target = target;
    this.#server = server;
    this.#ctx = ctx;
    const sc = server.spanContext();
    this.traceId = sc.traceId;
    this.spanId = sc.spanId;
    this.sampled = server.isRecording();
  }

  get context(): Context {
    return this.#ctx;
  }

  gate(work: () => void): void {
    // An unsampled request records nothing under its gate: no span to find, so no context to carry.
    if (!this.sampled) return work();
    this.#gateStart = performance.now();
    active.run(this, work);
  }

  /** The gate's context for a span under it, its span started now with the gate's start time; null once it is over. */
  parentContext(): Context | null {
    if (this.#gateStart < 0) return null;
    if (this.#gateCtx === null) {
      this.#gate = this.#tracer.startSpan('keygate.gate', { startTime: this.#gateStart }, this.#ctx);
      this.#gateCtx = trace.setSpan(this.#ctx, this.#gate);
    }
    return this.#gateCtx;
  }

  decided(decision: string, tenantId: string | null, keyId: string | null): void {
    if (this.#gateStart < 0) return;
    // The identity goes on the server span (at its end, with the rest); the decision on the gate's span, which
    // an allowed request whose key was cached does not have: the server span's status and the access line say
    // it all, and a third of the spans of the common request would be spent on saying it again.
    this.#tenantId = tenantId;
    this.#keyId = keyId;
    if (decision === 'allowed') {
      this.#gate?.setAttribute('keygate.decision', 'allowed');
    } else {
      this.parentContext();
      this.#gate!.setAttributes({ 'keygate.decision': 'refused', 'keygate.refusal_code': decision });
    }
    this.#gateStart = -1;
    this.#gate?.end();
    this.#gate = null;
  }

  #startUpstream(method: string, url: string): Context {
    // Unsampled: the upstream gets the server span's context (with the sampled flag off); a span that records
    // nothing would only cost its making.
    if (!this.sampled) return this.#ctx;
    // The query is left out of url.full: it is the client's, and keygate does not judge what it carries.
    const query = url.indexOf('?');
    const attributes: Attributes = { ...this.#target, [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_FULL]: query < 0 ? url : url.slice(0, query) };
    this.#upstream = this.#tracer.startSpan(method, { kind: SpanKind.CLIENT, attributes }, this.#ctx);
    return trace.setSpan(this.#ctx, this.#upstream);
  }

  upstream(method: string, url: string, headers: string[]): void {
    injectInto(headers, this.#startUpstream(method, url));
  }

  upstreamFields(method: string, url: string, headers: Record<string, string>): void {
    delete headers.traceparent;
    delete headers.tracestate;
    propagator.inject(this.#startUpstream(method, url), headers, setField);
  }

  upstreamHead(status: number): void {
    const span = this.#upstream;
    if (span === null) return;
    // A client span's 4xx is an error too (semantic conventions for HTTP clients).
    if (status >= 400) span.setStatus({ code: SpanStatusCode.ERROR }).setAttributes({ [ATTR_HTTP_RESPONSE_STATUS_CODE]: status, [ATTR_ERROR_TYPE]: String(status) });
    else span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  }

  upstreamEnd(error?: string): void {
    const span = this.#upstream;
    if (span === null) return;
    this.#upstream = null;
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR }).setAttribute(ATTR_ERROR_TYPE, error);
    span.end();
  }

  end(status: number, code: string | null, route: string | null, door: string, clientIp: string): void {
    if (this.#ended) return;
    this.#ended = true;
    // The gate still running: the client left (or the answer went out) before the checks finished.
    if (this.#gateStart >= 0) {
      this.parentContext();
      this.#gateStart = -1;
      this.#gate!.setAttribute('keygate.decision', 'unfinished');
      this.#gate!.end();
      this.#gate = null;
    }
    // Still open: the client left, or keygate answered for the upstream (a queued request that timed out).
    this.upstreamEnd(status === 0 ? 'client_aborted' : code !== null && code.startsWith('upstream_') ? code : undefined);
    const server = this.#server;
    if (this.sampled) {
      // One setAttributes call: each attribute set on a span is checked and copied on its own.
      const attributes: Attributes = {};
      if (door !== 'proxy') attributes['keygate.door'] = door;
      if (clientIp !== '') attributes[ATTR_CLIENT_ADDRESS] = clientIp;
      // The socket peer, when it is not the client (a trusted proxy forwarded the request).
      if (clientIp !== this.#peer) attributes[ATTR_NETWORK_PEER_ADDRESS] = this.#peer;
      if (status > 0) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
      if (route !== null) attributes[ATTR_URL_PATH] = route;
      if (this.#tenantId !== null) attributes['keygate.tenant_id'] = this.#tenantId;
      if (this.#keyId !== null) attributes['keygate.key_id'] = this.#keyId;
      if (code !== null) {
        attributes[ATTR_ERROR_TYPE] = code;
        attributes['keygate.refusal_code'] = code;
        attributes['keygate.decision'] = status >= 500 ? 'failed' : 'refused';
      }
      server.setAttributes(attributes);
      // A server span is an error only for 5xx: a 4xx is the client's (semantic conventions for HTTP servers).
      if (status >= 500) server.setStatus({ code: SpanStatusCode.ERROR });
    }
    server.end();
  }
}

export function createTracing(opts: TracingOptions): Tracing {
  const cfg = opts.config;
  // Export failures reach the log, at most once a minute (a collector that is down must not flood it).
  const warnExport = throttledWarn(opts.logger, 'OpenTelemetry export problem', 60_000);
  diag.disable(); // a second tracing in one process (a benchmark) replaces the first one's logger quietly
  diag.setLogger({ error: (message) => warnExport({ message }), warn: (message) => warnExport({ message }), info: noop, debug: noop, verbose: noop }, DiagLogLevel.WARN);
  // No global context manager: keygate passes each span's parent explicitly, and finds the request a Redis
  // command or a key lookup runs for through its own AsyncLocalStorage (`active`), entered only by sampled
  // requests' gates; OpenTelemetry's would build a Context object for every span made current.
  const exporter = new OTLPTraceExporter({ url: cfg.endpoint, headers: cfg.headers });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg.serviceName, [ATTR_SERVICE_VERSION]: opts.version }),
    sampler: samplerOf(cfg.sampler),
    spanLimits: { attributeValueLengthLimit: MAX_ATTRIBUTE_LENGTH, linkCountLimit: 1 },
    // Bounded: beyond maxQueueSize finished spans waiting for export are dropped (the SDK counts them).
    spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: cfg.maxQueueSize, maxExportBatchSize: Math.min(512, cfg.maxQueueSize), scheduledDelayMillis: cfg.exportDelayMs })],
  });
  const tracer = provider.getTracer('keygate', opts.version);
  const scheme = opts.upstreamUrl.startsWith('https') ? 'https' : 'http';
  const target = new URL(opts.upstreamUrl);
  const upstreamAttributes: Attributes = { [ATTR_SERVER_ADDRESS]: target.hostname, [ATTR_SERVER_PORT]: Number(target.port || (target.protocol === 'https:' ? 443 : 80)) };

  function request(req: IncomingMessage): RequestTrace {
    const peer = req.socket.remoteAddress ?? '';
    let parent = ROOT_CONTEXT;
    let links: Link[] | undefined;
    if (req.headers.traceparent !== undefined) {
      const extracted = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
      const remote = trace.getSpanContext(extracted);
      if (remote && isSpanContextValid(remote)) {
        // Only a trusted peer decides keygate's trace (and whether it is sampled); anyone else's context is kept
        // as a link, so it can still be found, without letting a client choose trace ids or force sampling.
        if (opts.trustedPeers !== null && contains(opts.trustedPeers, peer)) parent = extracted;
        else links = [{ context: remote, attributes: { 'keygate.link': 'untrusted_parent' } }];
      }
    }
    const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: req.method ?? 'GET', [ATTR_URL_SCHEME]: scheme };
    const agent = req.headers['user-agent'];
    if (agent !== undefined) attributes[ATTR_USER_AGENT_ORIGINAL] = agent;
    const server = tracer.startSpan(req.method ?? 'GET', { kind: SpanKind.SERVER, attributes, links }, parent);
    return new Request(tracer, server, trace.setSpan(parent, server), upstreamAttributes, peer);
  }

  return {
    request,
    upgrades: new WeakMap<Duplex, RequestTrace>(),

    session(handshake) {
      const span = tracer.startSpan('keygate.websocket.session', undefined, (handshake as Request).context);
      if (!span.isRecording()) return null;
      return {
        end(code, reason, client, upstream) {
          span.setAttributes({
            'keygate.websocket.client_frames': client.messages,
            'keygate.websocket.client_bytes': client.bytes,
            'keygate.websocket.upstream_frames': upstream.messages,
            'keygate.websocket.upstream_bytes': upstream.bytes,
            'keygate.websocket.close_code': code,
            'keygate.websocket.close_reason': reason,
          });
          if (code === 1011) span.setStatus({ code: SpanStatusCode.ERROR });
          span.end();
        },
      };
    },

    lookup(work) {
      const parent = active.getStore()?.parentContext() ?? null;
      if (parent === null) return work();
      const span = tracer.startSpan('keygate.key_lookup', undefined, parent);
      return active.run(new Lookup(span, trace.setSpan(parent, span)), work).then(
        (found) => (span.end(), found),
        (err: unknown) => {
          span.setStatus({ code: SpanStatusCode.ERROR }).setAttribute(ATTR_ERROR_TYPE, err instanceof Error ? err.name : 'Error');
          span.end();
          throw err;
        },
      );
    },

    traceRedis(client: RedisLike) {
      const send = client.sendCommand.bind(client);
      const server = { [ATTR_DB_SYSTEM_NAME]: 'redis' } as Attributes;
      if (client.options?.host) server[ATTR_SERVER_ADDRESS] = client.options.host;
      if (client.options?.port) server[ATTR_SERVER_PORT] = client.options.port;
      if (client.options?.db !== undefined) server[ATTR_DB_NAMESPACE] = String(client.options.db);
      client.sendCommand = (...args: unknown[]) => {
        const command = args[0] as Command;
        // Background work (usage flushes, the invalidation subscriber) and unsampled requests make no spans; a
        // command sent again (the offline queue, a Cluster redirection) keeps its first one.
        const parent = command[TRACED] ? null : (active.getStore()?.parentContext() ?? null);
        if (parent === null) return send(...args);
        command[TRACED] = true;
        const name = command.name.toUpperCase();
        const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes: { ...server, [ATTR_DB_OPERATION_NAME]: name } }, parent);
        command.promise.then(
          () => span.end(),
          (err: unknown) => {
            span.setStatus({ code: SpanStatusCode.ERROR }).setAttribute(ATTR_ERROR_TYPE, err instanceof Error ? err.name : 'Error');
            span.end();
          },
        );
        return send(...args);
      };
    },

    async shutdown() {
      await provider.shutdown().catch((err: unknown) => warnExport({ err }));
    },
  };
}
