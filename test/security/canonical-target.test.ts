import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { ROUTE_POLICY, sendRaw, startExpressUpstream, startFindMyWayUpstream, type RouterUpstream } from '../helpers/routers.ts';
import { startKeygate } from '../helpers/keygate.ts';

// Route policy bypasses under `defaultAction: allow` with a key holding only `usage:read`.
// Each target reached a protected handler of a real router before the canonical request target; now each is
// refused, or matched to the route the router runs and held to its permission.

const policyFile = join(mkdtempSync(join(tmpdir(), 'kg-policy-')), 'policy.yaml');
writeFileSync(policyFile, stringify(ROUTE_POLICY));

let redis: RedisServer;
const routers: Array<{ upstream: RouterUpstream; kg: KeygateProcess; narrow: string; wide: string }> = [];

beforeAll(async () => {
  redis = await startRedis();
  for (const upstream of [await startExpressUpstream(), await startFindMyWayUpstream()]) {
    const kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, config: { policy: { file: policyFile } } });
    const { key } = await createTenant(kg, { name: upstream.name, plan: 'pro' });
    const narrow = (await self(kg, key, 'POST', '/api-keys', { permissions: ['usage:read'] })).body.key as string;
    routers.push({ upstream, kg, narrow, wide: key });
  }
});

afterAll(async () => {
  for (const r of routers) await Promise.all([r.kg.stop(), r.upstream.close()]);
  await redis?.close();
});

const BYPASSES: Array<[string, string]> = [
  ['POST', '/V1/CALLS'],
  ['GET', '/v1/Calls/7'],
  ['POST', '/v1/calls#x'],
  ['POST', '/v1/%63alls'],
  ['HEAD', '/v1/calls/9'],
  ['GET', '/v1/public/../calls/7'],
  ['GET', '/v1/public/%2e%2e/calls/7'],
  ['GET', '/v1/public/..;/calls/7'],
  ['GET', '/v1/calls;x/7'],
  ['POST', '/v1/calls;x'],
  ['POST', '/v1/calls/'],
  ['GET', '/v1//admin/x'],
  ['GET', '/v1/ADMIN/x'],
  ['GET', '/v1/%61dmin/x'],
  ['GET', '/v1/admin%2fx'],
  ['GET', 'http://127.0.0.1/v1/calls/7'],
];

describe('canonical request target: one form for the policy and the upstream', () => {
  it.each(BYPASSES)('%s %s with a usage:read key reaches no protected handler of either router', async (method, target) => {
    for (const { upstream, kg, narrow } of routers) {
      const before = upstream.hits.length;
      const res = await sendRaw(kg.url, method, target, { 'X-API-Key': narrow, 'Content-Type': 'application/json' });
      const reached = upstream.hits.slice(before).map((h) => h.handler);
      expect({ router: upstream.name, reached }).toEqual({ router: upstream.name, reached: [] });
      expect([400, 403, 404]).toContain(res.status);
    }
  });

  it('refuses each ambiguous form with 400 malformed_request, before authentication', async () => {
    const { kg } = routers[0]!;
    for (const target of ['/v1/calls#x', '/v1/a/../b', '/v1/%2e%2e/b', '/v1/a%2fb', '/v1/a%5Cb', '/v1//a', '/v1/a\\b', '/v1/%00', '/v1/%C0%AE', '/v1/a?b#c', 'http://x/v1']) {
      const res = await sendRaw(kg.url, 'GET', target);
      expect({ target, status: res.status, code: JSON.parse(res.body).error.code }).toEqual({ target, status: 400, code: 'malformed_request' });
    }
  });

  it('forwards the form it matched: unreserved escapes decoded, api_key removed, the rest byte for byte', async () => {
    for (const { upstream, kg, wide } of routers) {
      const before = upstream.hits.length;
      const res = await sendRaw(kg.url, 'GET', '/v1/%63alls/a%20b?x=%2F&api_key=secret&y=1+2&%61pi_key=s2', { 'X-API-Key': wide });
      expect(res.status).toBe(200);
      const hit = upstream.hits[before]!;
      expect(hit.handler).toBe('calls:read');
      expect(hit.url).toBe('/v1/calls/a%20b?x=%2F&y=1+2');
    }
  });

  it('matches case-insensitively, HEAD as GET and with a trailing slash: the route permission is what counts', async () => {
    for (const { upstream, kg, wide, narrow } of routers) {
      const callsReader = (await self(kg, wide, 'POST', '/api-keys', { permissions: ['calls:read'] })).body.key as string;
      for (const [method, target] of [['GET', '/V1/CALLS/7'], ['HEAD', '/v1/calls/7'], ['GET', '/v1/calls/7/']]) {
        // Let through to the router (find-my-way, unlike Express, has no HEAD fallback of its own: it answers 404).
        const seen = upstream.hits.length;
        await sendRaw(kg.url, method!, target!, { 'X-API-Key': callsReader });
        expect({ router: upstream.name, method, target, forwarded: upstream.hits.length - seen }).toEqual({ router: upstream.name, method, target, forwarded: 1 });
        expect((await sendRaw(kg.url, method!, target!, { 'X-API-Key': narrow })).status).toBe(403);
      }
      // Unmatched routes under defaultAction allow need defaultPermission (*): a narrowed key stays narrow.
      const res = await sendRaw(kg.url, 'GET', '/v1/elsewhere', { 'X-API-Key': callsReader });
      expect([res.status, JSON.parse(res.body).error.code]).toEqual([403, 'insufficient_permissions']);
      expect((await sendRaw(kg.url, 'GET', '/v1/elsewhere', { 'X-API-Key': wide })).status).toBe(404); // reached the router
      expect(upstream.hits.at(-1)!.handler).toBe('none');
    }
  });
});
