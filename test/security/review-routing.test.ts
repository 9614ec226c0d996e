import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import FindMyWay from 'find-my-way';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { ROUTE_POLICY, sendRaw, startFindMyWayUpstream, type RouterUpstream } from '../helpers/routers.ts';

// Adversarial review: request targets that the canonical target lets through unchanged, that the
// policy matches as one route and find-my-way (Fastify's router) routes as another.
//
// 1. A plain matrix parameter (`/v1/calls;x`): canonicalTarget refuses `..;` but keeps `;x`. The policy matches
//    the segment `calls;x` (no route, or a `:param` / `**` route); find-my-way with `useSemicolonDelimiter`
//    (Fastify 4's default; Spring and servlet containers strip `;...` the same way) routes `/v1/calls`.
// 2. An escaped non-ASCII letter whose lower case is ASCII: `%E2%84%AA` is U+212A KELVIN SIGN, and
//    'K'.toLowerCase() === 'k'. The escape is kept as it is for the policy; find-my-way with `caseSensitive: false`
//    decodes the path (decodeURI) and lower-cases it, so `/v1/%E2%84%AAeys` routes as `/v1/keys`.

function writePolicy(policy: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'kg-review-policy-')), 'policy.yaml');
  writeFileSync(file, stringify(policy));
  return file;
}

/** find-my-way set up as in test/helpers/routers.ts (case-insensitive), with a route that holds a `k`. */
async function startKeysRouter(): Promise<RouterUpstream> {
  const hits: RouterUpstream['hits'] = [];
  const router = FindMyWay({
    caseSensitive: false,
    defaultRoute: (req: IncomingMessage, res: ServerResponse) => {
      hits.push({ handler: 'none', method: req.method ?? '', url: req.url ?? '', body: '' });
      res.statusCode = 404;
      res.end();
    },
  });
  const h = (handler: string) => (req: IncomingMessage, res: ServerResponse) => {
    hits.push({ handler, method: req.method ?? '', url: req.url ?? '', body: '' });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ handler }));
  };
  router.on('GET', '/v1/keys', h('keys:read'));
  router.on('GET', '/v1/public/:id', h('usage:read'));
  const server = createServer((req, res) => router.lookup(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    name: 'find-my-way (keys)',
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

let redis: RedisServer;
const stops: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await redis?.close();
});

async function system(upstream: RouterUpstream, policy: unknown): Promise<{ kg: KeygateProcess; wide: string }> {
  stops.push(() => upstream.close());
  const kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, config: { policy: { file: writePolicy(policy) } } });
  stops.push(() => kg.stop());
  const { key } = await createTenant(kg, { name: 'review', plan: 'pro' });
  return { kg, wide: key };
}

describe('matrix parameters: the policy and a `;`-splitting router must see the same route', () => {
  it('an assistant-restricted key cannot reach POST /v1/calls with another assistant through /v1/calls;x', async () => {
    // The helper's own policy and find-my-way upstream (the security review's fixtures), unchanged.
    const upstream = await startFindMyWayUpstream();
    const { kg, wide } = await system(upstream, ROUTE_POLICY);
    // A key allowed everything (it holds defaultPermission `*`) but only the assistant asst_ok.
    const created = await self(kg, wide, 'POST', '/api-keys', { allowedAssistants: ['asst_ok'] });
    expect(created.status).toBe(201);
    const key = created.body.key as string;

    const direct = await sendRaw(kg.url, 'POST', '/v1/calls', { 'X-API-Key': key, 'Content-Type': 'application/json' }, '{"assistantId":"asst_evil"}');
    expect(direct.status).toBe(403); // the assistant rule holds on the plain path

    const before = upstream.hits.length;
    const res = await sendRaw(kg.url, 'POST', '/v1/calls;x', { 'X-API-Key': key, 'Content-Type': 'application/json' }, '{"assistantId":"asst_evil"}');
    const reached = upstream.hits.slice(before).map((h) => `${h.handler} ${h.url}`);
    // Today: 200 and find-my-way ran the calls:write handler with asst_evil (the policy saw no route: no rule).
    expect(reached).toEqual([]);
    expect([400, 403]).toContain(res.status);
  });

  it('a usage:read key cannot reach the calls:write handler through a catch-all route and /v1/calls;x', async () => {
    const upstream = await startFindMyWayUpstream();
    const policy = {
      defaultAction: 'deny',
      routes: [
        { method: 'POST', path: '/v1/calls', permission: 'calls:write' },
        { method: 'GET', path: '/v1/calls/:id', permission: 'calls:read' },
        { method: '*', path: '/v1/**', permission: 'usage:read' },
      ],
    };
    const { kg, wide } = await system(upstream, policy);
    const narrow = (await self(kg, wide, 'POST', '/api-keys', { permissions: ['usage:read'] })).body.key as string;
    expect((await sendRaw(kg.url, 'POST', '/v1/calls', { 'X-API-Key': narrow, 'Content-Type': 'application/json' }, '{}')).status).toBe(403);

    const before = upstream.hits.length;
    const res = await sendRaw(kg.url, 'POST', '/v1/calls;jsessionid=1', { 'X-API-Key': narrow, 'Content-Type': 'application/json' }, '{}');
    const reached = upstream.hits.slice(before).map((h) => h.handler);
    // Today: 200 and find-my-way ran calls:write for a usage:read key.
    expect(reached).toEqual([]);
    expect([400, 403]).toContain(res.status);
  });
});

describe('Unicode case folding: an escaped letter whose lower case is ASCII', () => {
  it('a usage:read key cannot reach GET /v1/keys as /v1/%E2%84%AAeys (KELVIN SIGN) on a case-insensitive router', async () => {
    const upstream = await startKeysRouter();
    const policy = {
      defaultAction: 'deny',
      routes: [
        { method: 'GET', path: '/v1/keys', permission: 'keys:read' },
        { method: 'GET', path: '/v1/**', permission: 'usage:read' },
      ],
    };
    const { kg, wide } = await system(upstream, policy);
    const narrow = (await self(kg, wide, 'POST', '/api-keys', { permissions: ['usage:read'] })).body.key as string;
    expect((await sendRaw(kg.url, 'GET', '/v1/keys', { 'X-API-Key': narrow })).status).toBe(403);
    expect((await sendRaw(kg.url, 'GET', '/v1/KEYS', { 'X-API-Key': narrow })).status).toBe(403); // ASCII case holds

    const before = upstream.hits.length;
    const res = await sendRaw(kg.url, 'GET', '/v1/%E2%84%AAeys', { 'X-API-Key': narrow });
    const reached = upstream.hits.slice(before).map((h) => h.handler);
    // Today: 200 and the router ran keys:read.
    expect(reached).toEqual([]);
    expect([400, 403]).toContain(res.status);
  });
});
