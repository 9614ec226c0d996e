import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError } from '../helpers/api.ts';
import { consoleLogin, cookieOf, OPERATORS, operatorConfig } from '../helpers/console.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// An outsider's cookies against console sessions on Redis: forged, truncated, signed out, odd and oversized
// values, and whether the session id ever reaches Redis or the logs in clear.

let redis: RedisServer;
let kg: KeygateProcess;
beforeAll(async () => {
  redis = await startRedis();
  kg = await startKeygate({ redisUrl: redis.url, config: { admin: { tokens: operatorConfig }, console: { sessionTtlSeconds: 60 } } });
}, 60_000);
afterAll(async () => {
  await kg?.stop();
  await redis?.close();
});

const login = async (token: string) => {
  const r = await consoleLogin(kg, token);
  expect(r.status).toBe(200);
  return cookieOf(r)!;
};
const whoami = (cookie: string) => call<any>(`${kg.opsUrl}/console/api/admin/v1/whoami`, { headers: { cookie, origin: kg.opsUrl } });

describe('console cookies on Redis', () => {
  it('refuses forged, truncated, extended, odd and oversized cookies with 401, never 500', async () => {
    const id = await login(OPERATORS.alice.token);
    expect((await whoami(`kg_console=${id}`)).status).toBe(200);
    const bad = [id.slice(0, -1), `${id}A`, id.toUpperCase(), `%${id}`, `${id}%00`, encodeURIComponent(`${id}"`), `"${id}"x`, 'x'.repeat(12_000), '%E0%A4%A', '\u00ff'.repeat(10)];
    for (const v of bad) {
      const r = await whoami(`kg_console=${v}`);
      expectError(r, 401, 'missing_api_key');
    }
    // Two cookies of that name: the first is the one read.
    expectError(await whoami(`kg_console=forged; kg_console=${id}`), 401, 'missing_api_key');
  });

  it('a read operator session cannot write; a signed-out or expired session is refused', async () => {
    const read = await login(OPERATORS.support.token);
    const w = await call<any>(`${kg.opsUrl}/console/api/admin/v1/tenants`, { method: 'POST', headers: { cookie: `kg_console=${read}`, origin: kg.opsUrl, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'nope' }) });
    expectError(w, 403, 'insufficient_permissions');
    const out = await login(OPERATORS.alice.token);
    expect((await call(`${kg.opsUrl}/console/logout`, { method: 'POST', headers: { cookie: `kg_console=${out}`, origin: kg.opsUrl } })).status).toBe(204);
    expectError(await whoami(`kg_console=${out}`), 401, 'missing_api_key');
    // Past its stored expiry (set back in Redis: the lifetime's minimum is a minute), whatever the keys' TTL says.
    const old = await login(OPERATORS.alice.token);
    const key = '{console}:sessions';
    const keys = await redis.client.keys(`*${key}`);
    expect(keys).toHaveLength(1);
    const digest = createHash('sha256').update(old).digest('hex');
    const raw = JSON.parse((await redis.client.hget(keys[0]!, digest))!) as { e: number };
    await redis.client.hset(keys[0]!, digest, JSON.stringify({ ...raw, e: Date.now() - 1 }));
    expectError(await whoami(`kg_console=${old}`), 401, 'missing_api_key');
    expect(await redis.client.hget(keys[0]!, digest)).toBeNull();
  });

  it('never sends the session id to Redis or writes it to the logs', async () => {
    const monitor = spawn('redis-cli', ['-u', redis.url, 'MONITOR']);
    let seen = '';
    monitor.stdout.on('data', (c: Buffer) => (seen += c.toString()));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const id = await login(OPERATORS.alice.token);
      expect((await whoami(`kg_console=${id}`)).status).toBe(200);
      await call(`${kg.opsUrl}/console/logout`, { method: 'POST', headers: { cookie: `kg_console=${id}`, origin: kg.opsUrl } });
      await new Promise((r) => setTimeout(r, 300));
      expect(seen).toContain('{console}');
      expect(seen).not.toContain(id);
      expect(seen).not.toContain(OPERATORS.alice.token);
      expect(kg.output()).not.toContain(id);
    } finally {
      monitor.kill();
    }
  });
});
