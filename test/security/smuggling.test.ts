import { connect } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// What held up in the security review: request smuggling and framing tricks, tried with raw bytes on the public listener.
// Whatever the client writes, the upstream receives exactly the requests keygate answered for, each framed anew.

const servers = useServers();
let kg: KeygateProcess;
let key: string;

beforeAll(async () => {
  kg = await servers.keygate();
  key = (await createTenant(kg, { name: 'framing' })).key;
});

/** Writes `bytes` on one connection and collects every status line answered until the server closes (or 2 s). */
function exchange(bytes: string): Promise<number[]> {
  const { hostname, port } = new URL(kg.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', reject);
    const done = () => resolve([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])));
    socket.on('close', done);
    setTimeout(() => socket.destroy(), 2_000).unref();
    socket.write(bytes);
  });
}

const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;

describe('framing attacks on the public listener', () => {
  it.each([
    ['Content-Length with Transfer-Encoding', head(['POST /v1/x HTTP/1.1', 'Host: a', `X-API-Key: ${'K'}`, 'Content-Length: 4', 'Transfer-Encoding: chunked']) + '0\r\n\r\nGET /v1/smuggled HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an obfuscated Transfer-Encoding', head(['POST /v1/x HTTP/1.1', 'Host: a', 'X-API-Key: K', 'Transfer-Encoding: xchunked', 'Content-Length: 3']) + 'abc'],
    ['two different Content-Lengths', head(['POST /v1/x HTTP/1.1', 'Host: a', 'X-API-Key: K', 'Content-Length: 3', 'Content-Length: 40']) + 'abc'],
    ['an obs-folded header', head(['GET /v1/x HTTP/1.1', 'Host: a', 'X-API-Key: K', ' folded: yes'])],
    ['absolute-form', head(['GET http://evil.example/v1/x HTTP/1.1', 'Host: a', 'X-API-Key: K'])],
    ['CONNECT', head(['CONNECT evil.example:443 HTTP/1.1', 'Host: evil.example:443', 'X-API-Key: K'])],
    ['an h2c upgrade', head(['GET /v1/x HTTP/1.1', 'Host: a', 'X-API-Key: K', 'Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAAP__'])],
  ])('refuses %s and forwards nothing', async (_name, raw) => {
    const before = servers.upstream.seen.length;
    const statuses = await exchange(raw.replaceAll('X-API-Key: K', `X-API-Key: ${key}`));
    expect(statuses.length).toBeLessThanOrEqual(1);
    if (statuses.length) expect(statuses[0]).toBeGreaterThanOrEqual(400);
    expect(servers.upstream.seen.slice(before).map((s) => s.url)).toEqual([]);
  });

  it('answers pipelined requests one by one, each held to its own key', async () => {
    const before = servers.upstream.seen.length;
    const raw = head(['GET /v1/one HTTP/1.1', 'Host: a', `X-API-Key: ${key}`]) + head(['GET /v1/two HTTP/1.1', 'Host: a', `X-API-Key: kg_sk_${'z'.repeat(30)}`]) + head(['GET /v1/three HTTP/1.1', 'Host: a', `X-API-Key: ${key}`, 'Connection: close']);
    expect(await exchange(raw)).toEqual([200, 401, 200]);
    expect(servers.upstream.seen.slice(before).map((s) => s.url)).toEqual(['/v1/one', '/v1/three']);
  });

  it('does not pass trailers or a chunked body framing through as headers', async () => {
    const before = servers.upstream.seen.length;
    const raw = head(['POST /v1/chunked HTTP/1.1', 'Host: a', `X-API-Key: ${key}`, 'Transfer-Encoding: chunked', 'Trailer: X-Tenant-Id', 'Connection: close']) + '3\r\nabc\r\n0\r\nX-Tenant-Id: ten_spoofed\r\n\r\n';
    expect(await exchange(raw)).toEqual([200]);
    const seen = servers.upstream.seen.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.bodyBytes).toBe(3);
    expect(seen[0]!.headers['x-tenant-id']).not.toBe('ten_spoofed');
  });
});
