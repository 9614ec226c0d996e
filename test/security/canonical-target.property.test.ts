import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { CATCH_ALL_POLICY, ROUTE_POLICY, sendRaw, startExpressUpstream, startFindMyWayUpstream, type RouterUpstream } from '../helpers/routers.ts';

// Property: whenever a real router (Express 5, find-my-way) dispatches a request target to a protected
// handler, keygate required that handler's permission — or refused the target. Targets are generated near the
// protected routes: case variants, escapes of letters and separators, dot segments, matrix parameters, doubled
// and trailing slashes, fragments, queries, and methods the routers treat alike.

const RUNS = 1000;
const HELD = new Set(['usage:read', 'calls:read']); // the key's permissions; a router running any other handler is a hole

// Two policies: the routes alone (unmatched routes need `*`), and the routes behind a `/v1/**` catch-all the key
// holds, so that a variant the policy does not match as its route is forwarded, and a router that routes it to
// the protected handler anyway shows up.
const dir = mkdtempSync(join(tmpdir(), 'kg-policy-'));
const policies = Object.entries({ routes: ROUTE_POLICY, 'catch-all': CATCH_ALL_POLICY }).map(([name, policy]) => {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(policy));
  return { name, file };
});

let redis: RedisServer;
const systems: Array<{ name: string; upstream: RouterUpstream; kg: KeygateProcess; key: string }> = [];
const upstreams: RouterUpstream[] = [];

beforeAll(async () => {
  redis = await startRedis();
  upstreams.push(await startExpressUpstream(), await startFindMyWayUpstream());
  for (const upstream of upstreams) {
    for (const policy of policies) {
      const kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, config: { policy: { file: policy.file } } });
      const { key } = await createTenant(kg, { name: upstream.name, plan: 'enterprise' });
      const narrow = await self(kg, key, 'POST', '/api-keys', { permissions: [...HELD] });
      systems.push({ name: `${upstream.name} behind the ${policy.name} policy`, upstream, kg, key: narrow.body.key as string });
    }
  }
});

afterAll(async () => {
  await Promise.all(systems.map((s) => s.kg.stop()));
  await Promise.all(upstreams.map((u) => u.close()));
  await redis?.close();
});

/** Mostly `plain`, sometimes one of `variants`: targets near the routes, so that many reach a router. */
const mostly = <T>(plain: fc.Arbitrary<T>, variants: fc.Arbitrary<T>, weight = 2) => fc.oneof({ arbitrary: plain, weight: 3 }, { arbitrary: variants, weight });

const version = mostly(fc.constant('v1'), fc.constantFrom('V1', '%76%31', 'v%31', '.', '..', '', 'public', '%2e%2e'));
const resource = mostly(
  fc.constantFrom('calls', 'admin', 'public', 'keys'),
  fc.constantFrom('KEYS', '%E2%84%AAeys', 'Keys', '%4Beys', 'Calls', 'CALLS', '%63alls', 'c%61lls', 'cAlls', 'calls;x', 'calls;', 'calls%3B', 'calls%3bx', 'ADMIN', '%61dmin', 'adm%49n', '..', '.', '%2e', '%2E%2E', 'calls%2f7', 'calls%5C7', '', 'calls%20', 'calls.', 'calls~'),
  3,
);
const piece = fc.constantFrom('7', 'x', '..', '.', '', '%2e%2e', 'admin', 'calls', '..;', '..;x', 'a%2Fb', 'A', '%00', '%C0%AE', 'caf%C3%A9', ';', 'public');
const before = mostly(fc.constant<string[]>([]), fc.array(piece, { minLength: 1, maxLength: 2 }), 1);
const after = mostly<string[]>(fc.constantFrom(['7'], ['x', 'y']), fc.array(piece, { maxLength: 2 }));
const suffix = mostly(fc.constant(''), fc.constantFrom('/', '#x', '?a=1', '?api_key=x', '//', ';x', '%2f', '?#', '#/../admin', '?/../admin', '/.', '/..'));
const method = mostly(fc.constantFrom('GET', 'POST'), fc.constantFrom('HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'get', 'Post'));

const target = fc.tuple(before, version, resource, after, suffix).map(([b, v, r, a, end]) => `/${[...b, v, r, ...a].join('/')}${end}`);

describe('routing property: a router never runs a handler whose permission the key lacks', () => {
  it(`holds for ${RUNS} generated targets on Express 5 and find-my-way, behind two policies`, async () => {
    let forwarded = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(method, target, async (m, t) => {
        for (const { name, upstream, kg, key } of systems) {
          const before = upstream.hits.length;
          const res = await sendRaw(kg.url, m, t, { 'X-API-Key': key, 'Content-Type': 'application/json' }, m === 'GET' || m === 'HEAD' ? '' : '{}');
          const ran = upstream.hits.slice(before).map((h) => h.handler);
          if (ran.length) forwarded++;
          else refused++;
          const holes = ran.filter((h) => h !== 'none' && !HELD.has(h));
          if (holes.length) throw new Error(`${name} ran ${holes.join(', ')} for ${m} ${JSON.stringify(t)} (keygate answered ${res.status})`);
        }
      }),
      { numRuns: RUNS },
    );
    console.log(`routing property: ${RUNS} targets × ${systems.length} router and policy pairs = ${forwarded + refused} requests; ${forwarded} forwarded, ${refused} refused by keygate`);
    // The generator reaches both outcomes: a property that only ever saw refusals would prove little.
    expect(forwarded).toBeGreaterThan(RUNS / 100); // about 4% in practice: the key is narrow, most targets are refused
    expect(refused).toBeGreaterThan(RUNS / 10);
  }, 120_000);
});
