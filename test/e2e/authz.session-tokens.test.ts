import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, self } from '../helpers/api.ts';
import { throughEnvoy } from '../helpers/doors.ts';
import { startAuthzKeygate, startCaddy, startNginx, type AuthzKeygate, type Gateway } from '../helpers/gateways.ts';
import { root } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// Session tokens through the authorizer: nginx (auth_request), Caddy (forward_auth) and Envoy's ext_authz form
// decide a token as the inline proxy does — the same narrowing, the same identity at the upstream, never the
// token itself — and count its uses in the same counter, whichever gateway the client came through.

const servers = useServers();
let kg: AuthzKeygate;
let nginx: Gateway;
let caddy: Gateway;

beforeAll(async () => {
  kg = await startAuthzKeygate({
    redisUrl: servers.redis.url,
    upstream: servers.upstream.url,
    env: { KEYGATE_POLICY: join(root, 'test/fixtures/policy.yaml'), KEYGATE_TOKEN_SIGNING_KEYS: 'gw:a-token-signing-secret-of-32-chars-or-more' },
  });
  [nginx, caddy] = await Promise.all([startNginx({ authz: kg.authzPort, upstream: servers.upstream.port }), startCaddy({ authz: kg.authzPort, upstream: servers.upstream.port })]);
}, 60_000);
afterAll(async () => {
  await Promise.all([nginx?.stop(), caddy?.stop()]);
  await kg?.stop();
});

async function minter() {
  const { key } = await createTenant(kg, { name: 'gateway tokens', plan: 'pro' });
  const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['session-tokens:write', 'calls:read', 'voice:connect'] });
  expect(made.status).toBe(201);
  return { key: made.body.key as string, keyId: made.body.id as string };
}

const mint = async (key: string, body: Record<string, unknown>) => {
  const r = await self(kg, key, 'POST', '/session-tokens', body);
  expect(r.status).toBe(201);
  return r.body as { token: string; id: string };
};

/** One request with the token as Bearer through `door`; the status and what the upstream saw (null: nothing). */
async function through(door: 'nginx' | 'caddy' | 'envoy', token: string, path: string): Promise<{ status: number; upstream: Record<string, string> | null }> {
  if (door === 'envoy') {
    const r = await throughEnvoy(kg.authzPort, 'GET', path, [['Host', 'api.example.com'], ['Authorization', `Bearer ${token}`]]);
    return r.refused ? { status: r.refused.status, upstream: null } : { status: 200, upstream: Object.fromEntries(r.upstream!.map(([n, v]) => [n.toLowerCase(), v])) };
  }
  const before = servers.upstream.seen.length;
  const r = await call(`${(door === 'nginx' ? nginx : caddy).url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const seen = servers.upstream.seen.length > before ? servers.upstream.seen.at(-1)! : null;
  return { status: r.status, upstream: seen ? (seen.headers as Record<string, string>) : null };
}

describe('session tokens through the authorizer', () => {
  for (const door of ['nginx', 'caddy', 'envoy'] as const) {
    it(`${door}: the upstream sees a session of the minting key, narrowed, and never the token`, async () => {
      const { key, keyId } = await minter();
      const t = await mint(key, { permissions: ['calls:read'], metadata: { userId: 'u_7' } });
      const ok = await through(door, t.token, '/v1/calls/1');
      expect(ok.status).toBe(200);
      expect(ok.upstream).toMatchObject({ 'x-api-key-type': 'session', 'x-api-key-id': keyId, 'x-api-key-permissions': 'calls:read', 'x-session-token-id': t.id });
      expect(JSON.parse(ok.upstream!['x-session-token-metadata']!)).toEqual({ userId: 'u_7' });
      expect(ok.upstream!.authorization).toBeUndefined();
      expect(JSON.stringify(ok.upstream)).not.toContain(t.token);
      // Narrowed: the key's voice:connect is not the token's.
      const refused = await through(door, t.token, '/v1/voice/asst_1/stream');
      expect(refused.status).toBe(403);
      expect(refused.upstream).toBeNull();
    });
  }

  it('counts maxUses in one counter across gateways and the inline proxy', async () => {
    const { key } = await minter();
    const t = await mint(key, { maxUses: 4 });
    const statuses = [
      (await through('nginx', t.token, '/v1/calls/1')).status,
      (await through('caddy', t.token, '/v1/calls/1')).status,
      (await through('envoy', t.token, '/v1/calls/1')).status,
      (await call(`${kg.url}/v1/calls/1`, { headers: { authorization: `Bearer ${t.token}` } })).status,
      (await through('nginx', t.token, '/v1/calls/1')).status,
      (await through('envoy', t.token, '/v1/calls/1')).status,
    ];
    expect(statuses).toEqual([200, 200, 200, 200, 401, 401]);
  });
});
