import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { context, defaultTextMapGetter, diag, DiagLogLevel, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
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
  propagator.inject(ctx, list, { set: (carrier, key, value) => void carrier.push(key, value) });
}

class Request implements RequestTrace {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly #tracer: ReturnType<TracerProvider['getTracer']>;
  readonly #server: Span;
  readonly #ctx: Context;
  #gate: Span | null = null;
  #upstream: Span | null = null;
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
    this.#gate = this.#tracer.startSpan('keygate.gate', undefined, this.#ctx);
    context.with(trace.setSpan(this.#ctx, this.#gate), work);
  }

  decided(decision: string, tenantId: string | null, keyId: string | null): void {
    const gate = this.#gate;
    if (gate === null) return;
    this.#gate = null;
    // Each attribute is serialised with its name in every exported span: the identity goes on the server span
    // only, the decision on the gate's (bench/README.md has what a span costs).
    if (this.sampled) {
      if (decision === 'allowed') gate.setAttribute('keygate.decision', 'allowed');
      else gate.setAttributes({ 'keygate.decision': 'refused', 'keygate.refusal_code': decision });
      if (tenantId !== null) this.#server.setAttribute('keygate.tenant_id', tenantId);
      if (keyId !== null) this.#server.setAttribute('keygate.key_id', keyId);
    }
    gate.end();
  }

  #startUpstream(method: string, url: string): Context {
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
    propagator.inject(this.#startUpstream(method, url), headers, { set: (carrier, key, value) => void (carrier[key] = value) });
  }

  upstreamHead(status: number): void {
    const span = this.#upstream;
    if (span === null) return;
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    // A client span's 4xx is an error too (semantic conventions for HTTP clients).
    if (status >= 400) span.setStatus({ code: SpanStatusCode.ERROR }).setAttribute(ATTR_ERROR_TYPE, String(status));
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
    // The gate still open: the client left (or the answer went out) before the checks finished.
    if (this.#gate !== null) {
      this.#gate.setAttribute('keygate.decision', 'unfinished');
      this.#gate.end();
      this.#gate = null;
    }
    // Still open: the client left, or keygate answered for the upstream (a queued request that timed out).
    this.upstreamEnd(status === 0 ? 'client_aborted' : code !== null && code.startsWith('upstream_') ? code : undefined);
    const server = this.#server;
    if (this.sampled) {
      const attributes: Attributes = {};
      if (door !== 'proxy') attributes['keygate.door'] = door;
      if (clientIp !== '') attributes[ATTR_CLIENT_ADDRESS] = clientIp;
      // The socket peer, when it is not the client (a trusted proxy forwarded the request).
      if (clientIp !== this.#peer) attributes[ATTR_NETWORK_PEER_ADDRESS] = this.#peer;
      if (status > 0) attributes[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
      if (route !== null) attributes[ATTR_URL_PATH] = route;
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
  diag.setLogger({ error: (message) => warnExport({ message }), warn: (message) => warnExport({ message }), info: noop, debug: noop, verbose: noop }, DiagLogLevel.WARN);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
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
      const parent = context.active();
      const current = trace.getSpan(parent);
      if (current === undefined || !current.isRecording()) return work();
      const span = tracer.startSpan('keygate.key_lookup', undefined, parent);
      return context.with(trace.setSpan(parent, span), work).then(
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
        const parent = context.active();
        const current = trace.getSpan(parent);
        // Background work (usage flushes, the invalidation subscriber) and unsampled requests make no spans; a
        // command sent again (the offline queue, a Cluster redirection) keeps its first one.
        if (current === undefined || !current.isRecording() || command[TRACED]) return send(...args);
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
