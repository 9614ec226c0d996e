import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, proxied } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { freePort } from '../helpers/ports.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { run, scratchDir, tool } from '../helpers/tools.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// Metrics an on-call engineer can trust from the first scrape: keygate_store_up tells the store's state before
// anyone asked /readyz, and with tracing on the latency histogram's buckets point at traces (OpenMetrics
// exemplars). The classic text is checked by promtool; the OpenMetrics text by a real Prometheus, which asks for
// it, parses it and stores the exemplars (promtool's linter reads only the classic format).

let redis: RedisServer;
let upstream: Upstream;
let sink: Server;
let kg: KeygateProcess;
const received: number[] = [];

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startUpstream();
  // An OTLP endpoint that takes every export (what Jaeger does with them has its own test).
  sink = createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      received.push(n);
      res.setHeader('content-type', 'application/x-protobuf');
      res.end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;
  kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, env: { TRACING_ENABLED: 'true', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' } });
});
afterAll(async () => {
  await kg?.stop();
  sink?.close();
  await Promise.all([redis?.close(), upstream?.close()]);
});

const scrape = async (accept?: string) => {
  const res = await fetch(`${kg.opsUrl}/metrics`, { headers: accept ? { accept } : {} });
  return { type: res.headers.get('content-type') ?? '', text: await res.text() };
};

describe('keygate_store_up', () => {
  it('is 1 on the very first scrape (nobody has called /readyz), and 0 while the store is down', async () => {
    expect((await scrape()).text).toMatch(/^keygate_store_up 1$/m);
    await redis.stop();
    try {
      expect((await scrape()).text).toMatch(/^keygate_store_up 0$/m);
    } finally {
      await redis.start();
    }
    await expect.poll(async () => (await scrape()).text, { timeout: 15_000 }).toMatch(/^keygate_store_up 1$/m);
  });
});

describe('exemplars', () => {
  it('carry the trace id of a request on the latency histogram, in OpenMetrics only, and both formats lint', async () => {
    const { key } = await createTenant(kg, { name: 'exemplars' });
    for (let i = 0; i < 3; i++) expect((await proxied(kg, '/v1/calls/1', { 'x-api-key': key, 'x-request-id': `ex-${i}` })).status).toBe(200);
    const lines = () => kg.output().split('\n').filter((l) => l.includes('"msg":"request"') && l.includes('"requestId":"ex-'));
    await expect.poll(() => lines().length).toBe(3);
    const traceIds = lines().map((l) => (JSON.parse(l) as { trace_id: string }).trace_id);
    expect(traceIds.every((id) => /^[0-9a-f]{32}$/.test(id))).toBe(true);

    const classic = await scrape();
    expect(classic.type).toContain('text/plain');
    expect(classic.text).not.toContain('trace_id');
    const lint = await run(tool('promtool'), ['check', 'metrics'], { input: classic.text });
    expect({ code: lint.code, output: lint.stdout + lint.stderr }).toEqual({ code: 0, output: '' });

    const om = await scrape('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
    expect(om.type).toContain('application/openmetrics-text');
    expect(om.text.endsWith('# EOF\n')).toBe(true);
    const exemplar = /^keygate_request_duration_seconds_bucket\{[^}]*listener="public"[^}]*\} \d+ # \{trace_id="([0-9a-f]{32})",span_id="[0-9a-f]{16}"\} [\d.e-]+ [\d.]+$/m.exec(om.text);
    expect(exemplar).not.toBeNull();
    expect(traceIds).toContain(exemplar![1]);
    // Counters keep their names in both formats (OpenMetrics adds _total to the family's samples only).
    expect(om.text).toMatch(/^# TYPE keygate_requests counter$/m);
    expect(om.text).toMatch(/^keygate_requests_total\{/m);
    expect((await scrape()).text).toMatch(/^# TYPE keygate_requests_total counter$/m);
  });

  it('are what a real Prometheus scrapes and stores, through its OpenMetrics parser', async () => {
    const prometheus = tool('prometheus');
    const dir = scratchDir('prometheus');
    const port = await freePort();
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: keygate\n    static_configs:\n      - targets: ['127.0.0.1:${kg.opsPort}']\n`);
    const proc: ChildProcess = spawn(prometheus, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--enable-feature=exemplar-storage'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const api = `http://127.0.0.1:${port}/api/v1`;
      const { key } = await createTenant(kg, { name: 'prometheus' });
      // Scraped at least once with the target healthy: the OpenMetrics text parsed.
      await expect.poll(async () => {
        const targets = await fetch(`${api}/targets`).then((r) => r.json() as Promise<{ data: { activeTargets: Array<{ health: string; lastError: string }> } }>).catch(() => null);
        return targets?.data.activeTargets[0];
      }, { timeout: 30_000, interval: 500 }).toMatchObject({ health: 'up', lastError: '' });
      const sent: string[] = [];
      const found = async () => {
        await proxied(kg, '/v1/calls/1', { 'x-api-key': key });
        const start = (Date.now() - 120_000) / 1000;
        const r = await fetch(`${api}/query_exemplars?query=keygate_request_duration_seconds_bucket&start=${start}&end=${Date.now() / 1000 + 60}`).then((x) => x.json() as Promise<{ data: Array<{ exemplars: Array<{ labels: Record<string, string> }> }> }>);
        for (const series of r.data) for (const e of series.exemplars) sent.push(e.labels.trace_id!);
        return sent.length;
      };
      await expect.poll(found, { timeout: 30_000, interval: 1_000 }).toBeGreaterThan(0);
      const logged = kg.output().split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => (JSON.parse(l) as { trace_id?: string }).trace_id);
      expect(logged).toContain(sent[0]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nprometheus:\n${out.slice(-3000)}`, { cause: err });
    } finally {
      proc.kill('SIGTERM');
    }
  });

  it('exported the spans to the OTLP endpoint', () => {
    expect(received.some((n) => n > 0)).toBe(true);
  });
});
