import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, rawRequest } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { verifySignature } from '../../dist/verify.js';

const SECRET = 'backend-shared-signing-secret';
let redis: RedisServer;
let upstream: Upstream;
let kg: KeygateProcess;
let key: string;
let releaseSse: () => void = () => {};
let upstreamAborted: Promise<void> = Promise.resolve();
const signatures: Array<{ ok: boolean; tamperedOk: boolean }> = [];
let received = 0;

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startUpstream((req, res, seen) => {
    if (req.url === '/v1/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      releaseSse = () => res.end('data: last\n\n');
      return;
    }
    if (req.url === '/v1/upload') {
      // A deliberately slow reader (about 100 MB/s): a proxy that buffered would hold the difference.
      let sinceBreak = 0;
      req.on('data', (c: Buffer) => {
        seen.bodyBytes += c.length;
        received = seen.bodyBytes;
        sinceBreak += c.length;
        if (sinceBreak >= 1 << 20) {
          sinceBreak = 0;
          req.pause();
          setTimeout(() => req.resume(), 10);
        }
      });
      req.on('end', () => res.end(JSON.stringify({ bodyBytes: seen.bodyBytes })));
      return;
    }
    if (req.url === '/v1/hang') {
      upstreamAborted = new Promise((r) => res.once('close', () => r()));
      return;
    }
    const fields = { method: req.method!, path: req.url!.split('?')[0]!, tenantId: String(req.headers['x-tenant-id']), keyId: String(req.headers['x-api-key-id']) };
    signatures.push({
      ok: verifySignature(SECRET, req.headers['x-keygate-signature'], fields).ok,
      tamperedOk: verifySignature(SECRET, req.headers['x-keygate-signature'], { ...fields, tenantId: 'ten_other' }).ok,
    });
    req.on('data', (c: Buffer) => (seen.bodyBytes += c.length));
    req.on('end', () => res.end(JSON.stringify({ bodyBytes: seen.bodyBytes })));
  });
  kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, env: { KEYGATE_SIGNING_SECRET: SECRET } });
  ({ key } = await createTenant(kg, { name: 'stream', plan: 'enterprise' }));
});
afterAll(async () => {
  await kg?.stop();
  await Promise.all([redis?.close(), upstream?.close()]);
});

/** Resident set size of the keygate process (Linux /proc), in bytes. */
const rss = (field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${kg.proc.pid}/status`, 'utf8'))![1]) * 1024;

describe('streaming through the proxy', () => {
  it('streams a 50 MB chunked upload without buffering it (RSS grows < 20 MB)', async () => {
    await rawRequest(`${kg.url}/v1/warm`, { headers: { 'x-api-key': key } });
    const before = rss('VmRSS');
    const chunk = Buffer.alloc(64 * 1024, 7);
    const total = 50 * 1024 * 1024;
    let sent = 0;
    let maxInFlight = 0;
    const body = Readable.from((function* () {
      for (; sent < total; sent += chunk.length) {
        maxInFlight = Math.max(maxInFlight, sent - received);
        yield chunk;
      }
    })());
    const reply = await new Promise<string>((resolve, reject) => {
      const req = request(`${kg.url}/v1/upload`, { method: 'POST', headers: { 'x-api-key': key, 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      pipeline(body, req).catch(reject);
    });
    expect(JSON.parse(reply).bodyBytes).toBe(total);
    const grown = rss('VmHWM') - before;
    console.log(`50 MB upload: keygate peak RSS grew by ${(grown / 1048576).toFixed(1)} MB; at most ${(maxInFlight / 1048576).toFixed(1)} MB between client and upstream`);
    // Backpressure: what the client has sent but the upstream not yet read stays small (socket buffers).
    expect(maxInFlight).toBeLessThan(20 * 1024 * 1024);
    expect(grown).toBeLessThan(20 * 1024 * 1024);
  });

  it('delivers the first SSE event while the upstream is still sending', async () => {
    const res = await fetch(`${kg.url}/v1/stream`, { headers: { 'x-api-key': key } });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('data: first');
    releaseSse(); // the upstream only finishes after the client has the first event
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain('data: last');
  });

  it('aborts the upstream request when the client goes away', async () => {
    const ctrl = new AbortController();
    const pending = fetch(`${kg.url}/v1/hang`, { headers: { 'x-api-key': key }, signal: ctrl.signal }).catch(() => 'aborted');
    await expect.poll(() => upstream.seen.some((s) => s.url === '/v1/hang')).toBe(true);
    ctrl.abort();
    expect(await pending).toBe('aborted');
    await upstreamAborted; // resolves only if keygate closed the upstream request
    // keygate keeps serving afterwards
    expect((await rawRequest(`${kg.url}/v1/after`, { headers: { 'x-api-key': key } })).status).toBe(200);
  });

  it('signs the identity so the backend can verify it, and tampering fails', async () => {
    signatures.length = 0;
    await rawRequest(`${kg.url}/v1/signed?q=1`, { method: 'POST', headers: { 'x-api-key': key, 'x-tenant-id': 'ten_spoofed' }, body: 'x' });
    expect(signatures).toEqual([{ ok: true, tamperedOk: false }]);
  });
});
