import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError } from '../helpers/api.ts';
import { consoleLogin, cookieOf, OPERATORS, operatorConfig } from '../helpers/console.ts';
import { ADMIN_TOKEN, startKeygate } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// Sessions on Redis outlive a restart of keygate, and a restart (or a rolling deploy) is how an operator is
// removed, demoted or given a new token: a session signed in under the old configuration must not carry the
// old operator's rights into the new one.

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.close();
});

const support = operatorConfig.find((o) => o.name === 'support')!;

async function signInThenRestart(token: string, before: Record<string, unknown>, after: Record<string, unknown>, env: Record<string, string> = {}) {
  const prefix = `follow${Math.random().toString(36).slice(2, 8)}:`;
  const one = await startKeygate({ redisUrl: redis.url, config: { ...before, redis: { keyPrefix: prefix } } });
  let cookie: string;
  try {
    const r = await consoleLogin(one, token);
    expect(r.status).toBe(200);
    cookie = `kg_console=${cookieOf(r)!}`;
  } finally {
    await one.stop();
  }
  const two = await startKeygate({ redisUrl: redis.url, config: { ...after, redis: { keyPrefix: prefix } }, env });
  const o = two.opsUrl;
  return {
    whoami: () => call<any>(`${o}/console/api/admin/v1/whoami`, { headers: { cookie, origin: o } }),
    createTenant: () => call<any>(`${o}/console/api/admin/v1/tenants`, { method: 'POST', headers: { cookie, origin: o, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'after-demotion' }) }),
    stop: () => two.stop(),
  };
}

describe('console sessions on Redis follow the operators configured now', () => {
  it('ends the session of an operator removed from admin.tokens', async () => {
    const s = await signInThenRestart(OPERATORS.alice.token, { admin: { tokens: operatorConfig } }, { admin: { tokens: [support] } });
    try {
      expectError(await s.whoami(), 401, 'missing_api_key');
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('gives a demoted operator their new role: a write is refused 403', async () => {
    const demoted = operatorConfig.map((o) => (o.name === 'alice' ? { ...o, role: 'read' } : o));
    const s = await signInThenRestart(OPERATORS.alice.token, { admin: { tokens: operatorConfig } }, { admin: { tokens: demoted } });
    try {
      expect((await s.whoami()).body).toEqual({ name: 'alice', role: 'read' });
      expectError(await s.createTenant(), 403, 'insufficient_permissions');
    } finally {
      await s.stop();
    }
  }, 60_000);

  it("ends a session signed in with an operator's token once that operator's token is replaced", async () => {
    const replaced = operatorConfig.map((o) => (o.name === 'alice' ? { ...o, sha256: 'a'.repeat(64) } : o));
    const s = await signInThenRestart(OPERATORS.alice.token, { admin: { tokens: operatorConfig } }, { admin: { tokens: replaced } });
    try {
      expectError(await s.whoami(), 401, 'missing_api_key');
    } finally {
      await s.stop();
    }
  }, 60_000);

  it('ends a session signed in with admin.token once admin.token is replaced', async () => {
    const s = await signInThenRestart(ADMIN_TOKEN, {}, {}, { KEYGATE_ADMIN_TOKEN: 'a-new-admin-token-0123456789' });
    try {
      expectError(await s.whoami(), 401, 'missing_api_key');
    } finally {
      await s.stop();
    }
  }, 60_000);
});
