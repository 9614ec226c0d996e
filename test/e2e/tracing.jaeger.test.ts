import { spawn, type ChildProcess } from 'node:child_process';
import { request, type IncomingHttpHeaders } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_CONTEXT, SpanKind, defaultTextMapGetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { freePort } from '../helpers/ports.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { scratchDir, tool } from '../helpers/tools.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// A request followed from the client through keygate to the backend, in a real Jaeger (built by .ci/run, started
// here on free ports): the client's traceparent continued from a trusted peer, keygate's spans (gate, key lookup,
// Redis round trips, upstream exchange) between the client's and the backend's, which reports its own span with
// the OpenTelemetry SDK; a refusal's code on its spans; an untrusted peer's context kept as a link only; the
// WebSocket handshake and session; the access line carrying the same trace id; and no key anywhere in a trace.

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: Array<{ refType: string; traceID: string; spanID: string }>;
  tags: Array<{ key: string; value: unknown }>;
  processID: string;
}
interface JaegerTrace {
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

let jaeger: ChildProcess;
let jaegerOut = '';
let queryUrl: string;
let otlpUrl: string;
let redis: RedisServer;
let upstream: Upstream;
let kg: KeygateProcess;
let backend: TracerProvider;
const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
const propagator = new W3CTraceContextPropagator();

async function startJaeger(): Promise<void> {
  const bin = tool('jaeger');
  const [otlp, query, grpc] = [await freePort(), await freePort(), await freePort()];
  const dir = scratchDir('jaeger');
  const config = join(dir, 'jaeger.yaml');
  // Jaeger's all-in-one, reduced to what the test reads: OTLP over HTTP in, memory storage, the query API out,
  // every listener on a port of its own (several test runs may share the machine).
  writeFileSync(config, `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${query}
    grpc:
      endpoint: 127.0.0.1:${grpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`);
  jaeger = spawn(bin, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  jaeger.stdout!.on('data', (c: Buffer) => (jaegerOut += c.toString()));
  jaeger.stderr!.on('data', (c: Buffer) => (jaegerOut += c.toString()));
  queryUrl = `http://127.0.0.1:${query}`;
  otlpUrl = `http://127.0.0.1:${otlp}/v1/traces`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (jaeger.exitCode !== null) throw new Error(`jaeger exited ${jaeger.exitCode}:\n${jaegerOut}`);
    const up = await fetch(`${queryUrl}/api/services`).then((r) => r.ok, () => false);
    const otlpUp = await fetch(otlpUrl, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array() }).then(() => true, () => false);
    if (up && otlpUp) return;
    if (Date.now() > deadline) throw new Error(`jaeger did not start:\n${jaegerOut}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  await startJaeger();
  redis = await startRedis();
  // The backend: reports a span of its own, child of whatever traceparent keygate sent.
  backend = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'backend' }), spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter({ url: otlpUrl }) })] });
  const tracer = backend.getTracer('backend');
  upstream = await startUpstream((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const span = tracer.startSpan('backend handles', { kind: SpanKind.SERVER }, parent);
    req.resume();
    req.on('end', () => {
      span.end();
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
  });
  const wss = new WebSocketServer({ server: upstream.server });
  wss.on('connection', (ws, req) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    ws.on('message', (data) => ws.send(data));
  });
  kg = await startKeygate({
    redisUrl: redis.url,
    upstream: upstream.url,
    config: {
      server: { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1' },
      limits: { failedAttempts: { maxFailures: 1_000_000 } },
      tracing: { enabled: true, endpoint: otlpUrl, trustedPeers: ['127.0.0.1/32'] },
    },
    env: { OTEL_BSP_SCHEDULE_DELAY: '100' },
  });
}, 60_000);

afterAll(async () => {
  await kg?.stop();
  await backend?.shutdown();
  jaeger?.kill('SIGTERM');
  await Promise.all([redis?.close(), upstream?.close()]);
});

/** One request from a chosen local address (127.0.0.2 is not a trusted peer). */
function send(path: string, headers: Record<string, string>, localAddress = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: kg.port, path, headers, localAddress }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function traceOf(traceId: string, until: (t: JaegerTrace) => boolean): Promise<JaegerTrace> {
  let last: JaegerTrace | null = null;
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${queryUrl}/api/traces/${traceId}`);
    if (r.ok) {
      last = ((await r.json()) as { data: JaegerTrace[] }).data[0] ?? null;
      if (last && until(last)) return last;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`trace ${traceId} incomplete in Jaeger: ${JSON.stringify(last)}\n${jaegerOut.slice(-2000)}`);
}

async function accessLine(requestId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const line = kg.output().split('\n').find((l) => l.includes('"msg":"request"') && l.includes(`"requestId":"${requestId}"`));
    if (line) return JSON.parse(line) as Record<string, unknown>;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no access line for ${requestId}`);
}

const tag = (s: JaegerSpan, key: string) => s.tags.find((t) => t.key === key)?.value;
const service = (t: JaegerTrace, s: JaegerSpan) => t.processes[s.processID]!.serviceName;
const parentOf = (s: JaegerSpan) => s.references.find((r) => r.refType === 'CHILD_OF')?.spanID;
/** Both sides have reported: keygate's server and upstream spans and the backend's. */
const complete = (t: JaegerTrace) => t.spans.some((s) => service(t, s) === 'backend') && t.spans.some((s) => service(t, s) === 'keygate' && tag(s, 'span.kind') === 'server') && t.spans.some((s) => service(t, s) === 'keygate' && tag(s, 'span.kind') === 'client');
const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

describe('traces in Jaeger', () => {
  let key: string;
  const fetched: string[] = [];
  beforeAll(async () => {
    key = (await createTenant(kg, { name: 'traced' })).key;
  });

  it('continue a trusted client trace: keygate spans between the client and the backend, and the access line names it', async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    expect(await send('/v1/calls/1', { 'x-api-key': key, 'x-request-id': 'tr-trusted', traceparent: `00-${traceId}-${clientSpan}-01`, tracestate: 'client=1' })).toBe(200);
    const t = await traceOf(traceId, (x) => complete(x) && x.spans.some((s) => s.operationName === 'keygate.gate'));
    fetched.push(JSON.stringify(t));
    const ours = t.spans.filter((s) => service(t, s) === 'keygate');
    const server = ours.find((s) => tag(s, 'span.kind') === 'server')!;
    expect(server).toBeDefined();
    expect(parentOf(server)).toBe(clientSpan); // the client's span is the parent
    expect(tag(server, 'http.request.method')).toBe('GET');
    expect(tag(server, 'http.response.status_code')).toBe(200);
    expect(tag(server, 'url.path')).toBe('/v1/calls/1');
    expect(tag(server, 'keygate.tenant_id')).toMatch(/^ten_/);
    expect(tag(server, 'keygate.key_id')).toMatch(/^key_/);
    const gate = ours.find((s) => s.operationName === 'keygate.gate')!;
    expect(parentOf(gate)).toBe(server.spanID);
    expect(tag(gate, 'keygate.decision')).toBe('allowed');
    // The key was not cached yet: its lookup and the Redis round trips it made are spans under the gate.
    const lookup = ours.find((s) => s.operationName === 'keygate.key_lookup')!;
    expect(parentOf(lookup)).toBe(gate.spanID);
    const redisSpans = ours.filter((s) => tag(s, 'db.system.name') === 'redis');
    expect(redisSpans.length).toBeGreaterThan(0);
    for (const s of redisSpans) expect([gate.spanID, lookup.spanID]).toContain(parentOf(s));
    const client = ours.find((s) => tag(s, 'span.kind') === 'client' && tag(s, 'http.request.method') === 'GET')!;
    expect(parentOf(client)).toBe(server.spanID);
    expect(tag(client, 'http.response.status_code')).toBe(200);
    const backendSpan = t.spans.find((s) => service(t, s) === 'backend')!;
    expect(parentOf(backendSpan)).toBe(client.spanID); // the backend is the child of keygate's upstream span
    const forwarded = seen.find((s) => s.headers.traceparent?.includes(traceId))!;
    expect(forwarded.headers.traceparent).toBe(`00-${traceId}-${client.spanID}-01`);
    expect(forwarded.headers.tracestate).toBe('client=1');
    expect(await accessLine('tr-trusted')).toMatchObject({ trace_id: traceId, span_id: server.spanID });
  });

  it('start a trace for a request without one', async () => {
    expect(await send('/v1/calls/2', { 'x-api-key': key, 'x-request-id': 'tr-new' })).toBe(200);
    const line = await accessLine('tr-new');
    const t = await traceOf(line.trace_id as string, complete);
    fetched.push(JSON.stringify(t));
    const server = t.spans.find((s) => service(t, s) === 'keygate' && tag(s, 'span.kind') === 'server')!;
    expect(server.spanID).toBe(line.span_id);
    expect(server.references).toEqual([]);
    // The key is cached by now and the request allowed: the gate did nothing worth a span of its own (no store
    // round trip, no refusal), so keygate's spans are the server's and the upstream's, the identity on the first.
    const ours = t.spans.filter((s) => service(t, s) === 'keygate');
    expect(ours.map((s) => tag(s, 'span.kind')).sort()).toEqual(['client', 'server']);
    expect(tag(server, 'keygate.tenant_id')).toMatch(/^ten_/);
    expect(tag(server, 'keygate.key_id')).toMatch(/^key_/);
  });

  it('name the refusal code on a refused request, with no upstream span', async () => {
    const traceId = hex(32);
    expect(await send('/v1/calls/1', { 'x-api-key': `${key.slice(0, -3)}zzz`, traceparent: `00-${traceId}-${hex(16)}-01` })).toBe(401);
    const t = await traceOf(traceId, (x) => x.spans.length >= 2);
    fetched.push(JSON.stringify(t));
    const server = t.spans.find((s) => tag(s, 'span.kind') === 'server')!;
    expect(tag(server, 'keygate.refusal_code')).toBe('invalid_api_key');
    expect(tag(server, 'error.type')).toBe('invalid_api_key');
    expect(tag(server, 'http.response.status_code')).toBe(401);
    expect(tag(t.spans.find((s) => s.operationName === 'keygate.gate')!, 'keygate.refusal_code')).toBe('invalid_api_key');
    expect(t.spans.some((s) => tag(s, 'span.kind') === 'client')).toBe(false);
  });

  it('keep an untrusted peer\'s context as a link, never as the parent', async () => {
    const theirs = hex(32);
    expect(await send('/v1/calls/3', { 'x-api-key': key, 'x-request-id': 'tr-untrusted', traceparent: `00-${theirs}-${hex(16)}-01` }, '127.0.0.2')).toBe(200);
    const line = await accessLine('tr-untrusted');
    expect(line.trace_id).not.toBe(theirs);
    expect(line.clientIp).toBe('127.0.0.2');
    const t = await traceOf(line.trace_id as string, complete);
    fetched.push(JSON.stringify(t));
    const server = t.spans.find((s) => service(t, s) === 'keygate' && tag(s, 'span.kind') === 'server')!;
    expect(server.references).toEqual([expect.objectContaining({ refType: 'FOLLOWS_FROM', traceID: theirs })]);
    expect(seen.find((s) => s.url === '/v1/calls/3')!.headers.traceparent).toContain(line.trace_id as string);
    expect((await fetch(`${queryUrl}/api/traces/${theirs}`)).status).toBe(404);
  });

  it('record a WebSocket handshake and the session as two spans, frames and bytes as attributes', async () => {
    const traceId = hex(32);
    const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/a1/stream?api_key=${key}`, { headers: { traceparent: `00-${traceId}-${hex(16)}-01` } });
    await new Promise<void>((resolve, reject) => {
      let echoes = 0;
      ws.once('open', () => {
        ws.send('hello');
        ws.send(Buffer.alloc(100));
      });
      ws.on('message', () => ++echoes === 2 && ws.close(1000));
      ws.once('close', () => resolve());
      ws.once('error', reject);
    });
    const t = await traceOf(traceId, (x) => x.spans.some((s) => s.operationName === 'keygate.websocket.session'));
    fetched.push(JSON.stringify(t));
    const handshake = t.spans.find((s) => tag(s, 'span.kind') === 'server')!;
    expect(tag(handshake, 'http.response.status_code')).toBe(101);
    const session = t.spans.find((s) => s.operationName === 'keygate.websocket.session')!;
    expect(parentOf(session)).toBe(handshake.spanID);
    expect(tag(session, 'keygate.websocket.client_frames')).toBe(2);
    expect(tag(session, 'keygate.websocket.client_bytes')).toBe(105);
    expect(tag(session, 'keygate.websocket.upstream_frames')).toBe(2);
    expect(tag(session, 'keygate.websocket.close_code')).toBe(1000);
    // The upgrade's access line and the session's line carry the handshake span's ids.
    const lines = kg.output().split('\n').filter((l) => l.includes(`"trace_id":"${traceId}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.msg, l.status ?? l.closeCode, l.span_id])).toEqual([['request', 101, handshake.spanID], ['websocket session', 1000, handshake.spanID]]);
    // The upstream handshake carried keygate's context, and not the key from the query.
    const dial = seen.find((s) => s.url.startsWith('/v1/voice/a1/stream'))!;
    expect(dial.headers.traceparent).toContain(traceId);
    expect(dial.url).not.toContain(key);
  });

  it('start a fresh trace for a malformed or invalid traceparent, and never relay an oversized tracestate', async () => {
    const hostile: Array<Record<string, string>> = [
      { traceparent: 'garbage' },
      { traceparent: `00-${'0'.repeat(32)}-${hex(16)}-01` }, // the all-zero trace id is invalid
      { traceparent: `ff-${hex(32)}-${hex(16)}-01` }, // version ff is forbidden
      { traceparent: `00-${hex(32)}-${hex(16)}-01`, tracestate: Array.from({ length: 100 }, (_, i) => `k${i}=${'v'.repeat(100)}`).join(',') },
    ];
    for (const [i, headers] of hostile.entries()) {
      expect(await send(`/v1/calls/h${i}`, { 'x-api-key': key, 'x-request-id': `tr-hostile-${i}`, ...headers })).toBe(200);
      const line = await accessLine(`tr-hostile-${i}`);
      const forwarded = seen.find((s) => s.url === `/v1/calls/h${i}`)!.headers;
      expect(forwarded.traceparent).toMatch(new RegExp(`^00-${line.trace_id as string}-[0-9a-f]{16}-01$`));
      // A tracestate over the W3C limits (32 members, 512 characters) is dropped, not relayed.
      expect((forwarded.tracestate ?? '').length).toBeLessThanOrEqual(512);
    }
  });

  it('carry no key anywhere', async () => {
    const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
    expect(await send('/v1/calls/4', { authorization: `Bearer ${made.body.key as string}`, 'x-request-id': 'tr-bearer' })).toBe(200);
    const t = await traceOf((await accessLine('tr-bearer')).trace_id as string, complete);
    fetched.push(JSON.stringify(t));
    const everything = fetched.join('\n');
    expect(fetched.length).toBeGreaterThanOrEqual(6);
    for (const secret of [key, made.body.key as string]) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(secret.slice(-24));
    }
  });
});
