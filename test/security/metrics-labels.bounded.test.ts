import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check, startAuthzKeygate, type AuthzKeygate } from '../helpers/gateways.ts';
import { useServers } from '../helpers/servers.ts';

// Every metrics label fed by a request comes from a closed set. An anonymous client sending thousands of
// invented method tokens (through a gateway to the authorizer, which takes the original method from a
// header, and straight at the proxy) must not grow the exposition: each series it could make is one of a
// fixed few, however many distinct tokens arrive.

const servers = useServers();
let kg: AuthzKeygate;
beforeAll(async () => {
  kg = await startAuthzKeygate({ redisUrl: servers.redis.url, upstream: servers.upstream.url });
});
afterAll(async () => {
  await kg?.stop();
});

const TOKEN_CHARS = "!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-";
const randomToken = (): string => Array.from({ length: 1 + Math.floor(Math.random() * 20) }, () => TOKEN_CHARS[Math.floor(Math.random() * TOKEN_CHARS.length)]).join('');
const randomPath = (): string => `/${Math.random().toString(36).slice(2)}/${Math.floor(Math.random() * 1e9)}`;

/** A raw request with any method token (node's client sends any token; node's server may refuse it). */
function raw(url: string, method: string, path: string): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const req = request({ hostname, port, method, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function inParallel(n: number, width: number, one: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await one(next++);
  }));
}

async function series(): Promise<{ lines: string[]; bytes: number }> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`)).text();
  return { lines: text.split('\n').filter((l) => l.startsWith('keygate_')), bytes: text.length };
}

describe('metrics labels under random methods and paths with no key', () => {
  it('keeps the keygate_* series bounded and every method label in a closed set', async () => {
    const before = await series();
    const N = 3_000;
    await inParallel(N, 16, async (i) => {
      const method = randomToken();
      if (i % 3 === 0) return check(kg.authzUrl, { path: '/forward-auth', headers: { 'x-forwarded-method': method, 'x-forwarded-uri': randomPath() } });
      if (i % 3 === 1) return check(kg.authzUrl, { path: '/auth-request', headers: { 'x-original-method': method, 'x-original-uri': randomPath() } });
      return raw(kg.url, method, randomPath());
    });
    const after = await series();
    const methods = new Set(after.lines.filter((l) => l.startsWith('keygate_requests_total{')).map((l) => /method="([^"]*)"/.exec(l)?.[1]));
    const requestSeries = after.lines.filter((l) => l.startsWith('keygate_requests_total{')).length;
    const decisionSeries = after.lines.filter((l) => l.startsWith('keygate_auth_decisions_total{')).length;
    console.log(`keygate_* series ${before.lines.length} -> ${after.lines.length}; /metrics ${before.bytes} -> ${after.bytes} bytes; requests_total series ${requestSeries}; ${methods.size} methods`);
    for (const m of methods) expect(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'OTHER']).toContain(m);
    expect(requestSeries).toBeLessThanOrEqual(3 * 10 * 5); // listener × method × status class
    expect(decisionSeries).toBeLessThanOrEqual(40);
    expect(after.lines.length - before.lines.length).toBeLessThan(150);
  }, 180_000);
});
