import { request } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, expectError, proxied, type Reply } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { startKeygate } from '../helpers/keygate.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// `upstream.timeoutMs` runs from the hand-over to the pool, so a request
// waiting behind connections that another tenant's streams hold times out (504) instead of hanging; the wait
// queue is bounded (`upstream.maxQueue`, 502 beyond it); a tenant holds at most its plan's `maxInFlight`
// upstream requests (429 `concurrency_limit_reached`), released however the exchange ends; and the upstream's
// reason phrase is never copied, a head keygate cannot relay becoming a 502 — never a hung client.
// Real keygate processes, a real Redis, a real node:http upstream and a raw-socket one.

let redis: RedisServer;
let upstream: Upstream;
const started: KeygateProcess[] = [];
/** Upstream responses held open by `/hold/<id>` and `/sse/<id>`, by id. */
const held = new Map<string, ServerResponse>();
const closed = new Set<string>();

beforeAll(async () => {
  redis = await startRedis();
  upstream = await startUpstream((req, res) => {
    const m = /^\/v1\/(hold|sse)\/([\w-]+)/.exec(req.url ?? '');
    if (!m) return res.end('ok');
    held.set(m[2]!, res);
    res.once('close', () => closed.add(m[2]!));
    if (m[1] === 'sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n'); // and never ends
    }
  });
});
afterAll(async () => {
  await Promise.all(started.map((kg) => kg.stop()));
  await Promise.all([redis?.close(), upstream?.close()]);
});

async function keygate(config: Record<string, unknown>, upstreamUrl = upstream.url): Promise<KeygateProcess> {
  // fetch's pool may leave a connection open that never sent a request; node counts it as busy, so a graceful
  // stop would wait out the whole shutdown timeout for it.
  const kg = await startKeygate({ redisUrl: redis.url, upstream: upstreamUrl, config: { shutdown: { timeoutSeconds: 1 }, ...config } });
  started.push(kg);
  return kg;
}

/** A sample's value from the metrics exposition. */
async function metric(kg: KeygateProcess, sample: string): Promise<number> {
  const line = (await (await fetch(`${kg.opsUrl}/metrics`)).text()).split('\n').find((l) => l.startsWith(`${sample} `));
  return Number(line?.split(' ')[1] ?? 0);
}

const seen = (path: string) => upstream.seen.some((s) => s.url === path);
const release = (id: string) => held.get(id)!.end('released');

/** A proxied request that a client gives up on after `ms` (so a hang fails the test instead of timing it out). */
function get(kg: KeygateProcess, path: string, key: string, ms = 10_000): Promise<Reply> {
  return proxied(kg, path, { 'x-api-key': key }, { signal: AbortSignal.timeout(ms) });
}

describe('a queued request times out (row 9)', () => {
  it("answers another tenant 504 within about timeoutMs while one tenant's streams hold every connection", async () => {
    const kg = await keygate({ upstream: { maxSockets: 2, timeoutMs: 1_000 } });
    const a = (await createTenant(kg, { name: 'streams', plan: 'enterprise' })).key;
    const b = (await createTenant(kg, { name: 'victim', plan: 'enterprise' })).key;
    const streams = [new AbortController(), new AbortController()];
    for (const [i, ctrl] of streams.entries()) {
      const res = await fetch(`${kg.url}/v1/sse/row9-${i}`, { headers: { 'x-api-key': a }, signal: ctrl.signal });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('data: first');
    }
    const before = Date.now();
    const waited = await get(kg, '/v1/queued-b', b, 8_000).catch((err: Error) => err);
    expect(waited, 'the request hung instead of timing out').not.toBeInstanceOf(Error);
    expectError(waited as Reply, 504, 'upstream_timeout');
    expect(Date.now() - before).toBeLessThan(5_000);

    // The streams end: the connections serve again, and the timed-out request was dropped from the queue,
    // never sent late.
    for (const ctrl of streams) ctrl.abort();
    await expect.poll(() => closed.has('row9-0') && closed.has('row9-1')).toBe(true);
    expect((await get(kg, '/v1/after-b', b)).status).toBe(200);
    expect(seen('/v1/queued-b')).toBe(false);
  });

  it('answers 502 at once when the wait queue (upstream.maxQueue) is full', async () => {
    const kg = await keygate({ upstream: { maxSockets: 1, maxQueue: 1, timeoutMs: 10_000 } });
    const key = (await createTenant(kg, { name: 'queue', plan: 'enterprise' })).key;
    const first = get(kg, '/v1/hold/q1', key);
    await expect.poll(() => seen('/v1/hold/q1')).toBe(true);
    // One of these two waits for the connection, the other finds the queue full.
    const second = get(kg, '/v1/q2', key);
    const third = get(kg, '/v1/q3', key);
    const overflow = await Promise.race([second, third]);
    expectError(overflow, 502, 'upstream_unavailable');
    expect(held.has('q1') && !closed.has('q1')).toBe(true); // answered while the connection was still held
    release('q1');
    expect((await first).status).toBe(200);
    const replies = await Promise.all([second, third]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 502]);
    expect(await metric(kg, 'keygate_upstream_errors_total{kind="overloaded"}')).toBe(1);
  });
});

describe("a tenant's upstream requests in flight (plan maxInFlight)", () => {
  let kg: KeygateProcess;
  let a: string;
  let b: string;
  beforeAll(async () => {
    kg = await keygate({ plans: { free: { maxInFlight: 2 } }, upstream: { timeoutMs: 2_000 } });
    a = (await createTenant(kg, { name: 'greedy' })).key;
    b = (await createTenant(kg, { name: 'neighbour' })).key;
  });

  it('refuses the tenant beyond its cap with 429 and Retry-After, never forwarded, while another tenant gets through', async () => {
    const holds = [get(kg, '/v1/hold/c1', a), get(kg, '/v1/hold/c2', a)];
    await expect.poll(() => seen('/v1/hold/c1') && seen('/v1/hold/c2')).toBe(true);
    const third = await get(kg, '/v1/over-cap', a);
    expectError(third, 429, 'concurrency_limit_reached');
    expect(third.headers.get('retry-after')).toBe('1');
    expect(seen('/v1/over-cap')).toBe(false);
    expect((await get(kg, '/v1/neighbour', b)).status).toBe(200);
    // The cap counts upstream requests: the tenant's management calls hold none and still pass.
    expect((await fetch(`${kg.url}/keygate/v1/tenants/me`, { headers: { 'x-api-key': a } })).status).toBe(200);

    // Released when an exchange completes...
    release('c1');
    expect((await holds[0]!).status).toBe(200);
    expect((await get(kg, '/v1/after-complete', a)).status).toBe(200);
    release('c2');
    await holds[1];
  });

  it('releases the count when the client aborts and when the upstream times out', async () => {
    const ctrls = [new AbortController(), new AbortController()];
    const aborted = ctrls.map((c, i) => proxied(kg, `/v1/hold/ab${i}`, { 'x-api-key': a }, { signal: c.signal }).catch(() => 'aborted'));
    await expect.poll(() => seen('/v1/hold/ab0') && seen('/v1/hold/ab1')).toBe(true);
    expectError(await get(kg, '/v1/over-cap-2', a), 429, 'concurrency_limit_reached');
    for (const c of ctrls) c.abort();
    expect(await Promise.all(aborted)).toEqual(['aborted', 'aborted']);
    await expect.poll(() => closed.has('ab0') && closed.has('ab1')).toBe(true);

    // Both slots are free again: two more reach the upstream, and both time out (504)...
    const timeouts = await Promise.all([get(kg, '/v1/hold/to0', a), get(kg, '/v1/hold/to1', a)]);
    for (const r of timeouts) expectError(r, 504, 'upstream_timeout');
    // ...which releases them too.
    expect((await get(kg, '/v1/after-timeout', a)).status).toBe(200);
  });
});

describe("the upstream's response head (row 12)", () => {
  let raw: Server;
  const sockets = new Set<Socket>();
  let kg: KeygateProcess;
  let key: string;
  /** Response heads by request path, written byte for byte. */
  const heads: Record<string, string> = {
    '/v1/reason-del': 'HTTP/1.1 200 O\x7fK\r\n',
    '/v1/reason-custom': 'HTTP/1.1 201 Totally Made\r\n',
    '/v1/reason-ctl': 'HTTP/1.1 200 O\x01K\r\n',
    '/v1/value-del': 'HTTP/1.1 200 OK\r\nX-Bad: a\x7fb\r\n',
    '/v1/value-nul': 'HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\n',
    '/v1/value-cr': 'HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\n',
    '/v1/name-space': 'HTTP/1.1 200 OK\r\nX Bad: v\r\n',
    '/v1/name-del': 'HTTP/1.1 200 OK\r\nX\x7fBad: v\r\n',
  };

  beforeAll(async () => {
    raw = createServer((socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        if (!buffered.includes('\r\n\r\n')) return;
        const path = buffered.split(' ')[1] ?? '/';
        socket.end(Buffer.from(`${heads[path] ?? 'HTTP/1.1 200 OK\r\n'}Content-Length: 2\r\nConnection: close\r\n\r\nok`, 'latin1'));
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
    kg = await keygate({}, `http://127.0.0.1:${(raw.address() as AddressInfo).port}`);
    key = (await createTenant(kg, { name: 'heads', plan: 'enterprise' })).key;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((r) => (raw ? raw.close(() => r()) : r()));
  });

  /** The status line and body the client gets, or 'no answer' after 5 s. */
  function fetchRaw(path: string): Promise<{ status: number; reason: string; body: string } | 'no answer'> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: kg.port, path, headers: { 'x-api-key': key }, timeout: 5_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', body }));
      });
      req.on('timeout', () => {
        req.destroy();
        resolve('no answer');
      });
      req.on('error', reject);
      req.end();
    });
  }

  it("relays the status with the standard reason phrase, never the upstream's", async () => {
    expect(await fetchRaw('/v1/reason-del')).toEqual({ status: 200, reason: 'OK', body: 'ok' });
    expect(await fetchRaw('/v1/reason-custom')).toEqual({ status: 201, reason: 'Created', body: 'ok' });
    expect(await fetchRaw('/v1/reason-ctl')).not.toBe('no answer');
  });

  // undici's parser refuses these heads itself; a head it accepts that node will not write takes the same path
  // (onHeaders catches writeHead's throw). Either way: a 502 with the standard reason, never a hung client.
  it('answers 502 upstream_unavailable (the JSON envelope) for a head it cannot relay', async () => {
    for (const path of ['/v1/value-del', '/v1/value-nul', '/v1/value-cr', '/v1/name-space', '/v1/name-del']) {
      const got = await fetchRaw(path);
      expect(got, path).not.toBe('no answer');
      if (got === 'no answer') continue;
      expect({ path, status: got.status, reason: got.reason }).toEqual({ path, status: 502, reason: 'Bad Gateway' });
      expect(JSON.parse(got.body).error.code).toBe('upstream_unavailable');
    }
    expect(await fetchRaw('/v1/fine')).toEqual({ status: 200, reason: 'OK', body: 'ok' });
    expect(await metric(kg, 'keygate_upstream_errors_total{kind="invalid"}')).toBe(5);
  });
});
