import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { expectError, proxied } from '../helpers/api.ts';
import { ADMIN_TOKEN, startKeygate, type KeygateProcess, runCli } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// The CLI's management commands against a real running keygate, through its admin API: on the embedded store
// (where the old direct-to-store CLI printed keys no server knew) and on Redis.


const keygate = runCli;

const servers = useServers();

/** Every JSON-mode answer is exactly one document: JSON.parse of the whole stdout must succeed. */
const one = (stdout: string) => JSON.parse(stdout) as any;

async function lifecycle(kg: KeygateProcess) {
  const env = { KEYGATE_URL: kg.opsUrl, KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN };

  const created = await keygate(['tenants', 'create', '--name', 'cli-co', '--plan', 'pro', '--json'], env);
  expect(created.code, created.stderr).toBe(0);
  const { tenant, apiKey: first } = one(created.stdout);
  expect(tenant.plan).toBe('pro');
  expect(first.key).toMatch(/^kg_sk_/);
  // The key the CLI printed is one the running keygate knows.
  expect((await proxied(kg, '/v1/calls/x', { 'x-api-key': first.key })).status).toBe(200);

  const made = await keygate(['keys', 'create', '--tenant', tenant.id, '--name', 'ci', '--permissions', 'calls:read,calls:write'], env);
  expect(made.code, made.stderr).toBe(0);
  // Human output: field lines, the raw key on its own line, the "store it" notice on stderr.
  const second = /^key\s+(kg_sk_\w+)$/m.exec(made.stdout)?.[1];
  expect(second).toBeTruthy();
  expect(made.stdout).toMatch(/^permissions\s+calls:read,calls:write$/m);
  expect(made.stderr).toContain('will not be shown again');

  const table = await keygate(['keys', 'list', '--tenant', tenant.id], env);
  expect(table.code).toBe(0);
  const lines = table.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^ID\s+NAME\s+TYPE\s+PREFIX\s+PERMISSIONS\s+ACTIVE\s+EXPIRES\s+LAST USED$/);
  expect(lines).toHaveLength(3);
  for (const line of lines) expect(line.length).toBeLessThan(200);
  expect(table.stdout).not.toContain(first.key);
  expect(table.stdout).not.toContain(second);

  const listed = one((await keygate(['keys', 'list', '--tenant', tenant.id, '--output', 'json'], env)).stdout);
  expect(listed.data).toHaveLength(2);
  const ci = listed.data.find((k: { name: string }) => k.name === 'ci');
  expect(ci.permissions).toEqual(['calls:read', 'calls:write']);

  const rotated = await keygate(['keys', 'rotate', '--tenant', tenant.id, '--id', ci.id, '--json'], env);
  expect(rotated.code, rotated.stderr).toBe(0);
  const third = one(rotated.stdout).key;
  expectError(await proxied(kg, '/v1/calls/x', { 'x-api-key': second! }), 401, 'invalid_api_key');
  expect((await proxied(kg, '/v1/calls/x', { 'x-api-key': third })).status).toBe(200);

  // A session token of that key, minted from the command line: single use here, narrowed to calls:read.
  const minted = await keygate(['tokens', 'mint', '--tenant', tenant.id, '--key', ci.id, '--permissions', 'calls:read', '--max-uses', '1', '--ttl', '60', '--json'], env);
  expect(minted.code, minted.stderr).toBe(0);
  const token = one(minted.stdout);
  expect(token).toMatchObject({ keyId: ci.id, permissions: ['calls:read'], maxUses: 1 });
  expect((await proxied(kg, '/v1/calls/x', { authorization: `Bearer ${token.token}` })).status).toBe(200);
  expectError(await proxied(kg, '/v1/calls/x', { authorization: `Bearer ${token.token}` }), 401, 'invalid_api_key');
  const human = await keygate(['tokens', 'mint', '--tenant', tenant.id, '--key', ci.id], env);
  expect(human.code, human.stderr).toBe(0);
  expect(human.stdout).toMatch(/^kg_st_\S+$/m);
  const wider = await keygate(['tokens', 'mint', '--tenant', tenant.id, '--key', ci.id, '--permissions', 'admin:everything'], env);
  expect(wider.code).toBe(1);
  expect(wider.stderr).toContain('insufficient_permissions');

  const revoked = await keygate(['keys', 'revoke', '--tenant', tenant.id, '--id', ci.id, '--json'], env);
  expect(revoked.code).toBe(0);
  expect(one(revoked.stdout)).toEqual({ tenantId: tenant.id, id: ci.id, revoked: true });
  expectError(await proxied(kg, '/v1/calls/x', { 'x-api-key': third }), 401, 'invalid_api_key');

  const tenants = one((await keygate(['tenants', 'list', '--json'], env)).stdout);
  expect(tenants.data.map((t: { id: string }) => t.id)).toContain(tenant.id);
  const overview = one((await keygate(['overview', '--json'], env)).stdout);
  expect(overview.tenants).toBeGreaterThanOrEqual(1);

  // keygate's refusal: its code and message, exit 1, nothing on stdout.
  const bad = await keygate(['keys', 'create', '--tenant', tenant.id, '--permissions', 'nope', '--json'], env);
  expect(bad.code).toBe(1);
  expect(bad.stdout).toBe('');
  expect(bad.stderr).toContain('validation_error');
  expect(bad.stderr).toContain(kg.opsUrl);
  const missing = await keygate(['tenants', 'get', '--id', 'ten_01JZZZZZZZZZZZZZZZZZZZZZZZ'], env);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('not_found');
}

describe('the CLI manages the running keygate through its admin API', () => {
  it('on the embedded store: the keys it prints work on that keygate', async () => {
    const kg = await startKeygate({ upstream: servers.upstream.url });
    try {
      await lifecycle(kg);
    } finally {
      await kg.stop();
    }
  });

  it('on Redis', async () => {
    // Every replica on Redis verifies what any signed: session tokens need the shared signing keys there.
    await lifecycle(await servers.keygate({ env: { KEYGATE_TOKEN_SIGNING_KEYS: 'cli:a-token-signing-secret-of-32-chars-or-more' } }));
  });

  it('refuses a missing or wrong admin token with 77, naming the address', async () => {
    const kg = await servers.keygate();
    const none = await keygate(['tenants', 'list'], { KEYGATE_URL: kg.opsUrl });
    expect(none.code).toBe(77);
    expect(none.stderr).toContain('KEYGATE_ADMIN_TOKEN');
    const wrong = await keygate(['tenants', 'list'], { KEYGATE_URL: kg.opsUrl, KEYGATE_ADMIN_TOKEN: 'not-the-admin-token-at-all' });
    expect(wrong.code).toBe(77);
    expect(wrong.stderr).toContain(`${kg.opsUrl} refused tenants list: invalid_api_key`);
  });

  it('names the address and the cause when keygate cannot be reached (69), at once', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const started = Date.now();
    const r = await keygate(['--url', `http://127.0.0.1:${port}`, 'tenants', 'list'], { KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(r.code).toBe(69);
    expect(r.stderr).toContain(`cannot reach keygate at http://127.0.0.1:${port}`);
    expect(r.stderr).toContain('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('gives up on a keygate that accepts but never answers, naming the address (69)', async () => {
    const silent = createServer(() => {}).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const { port } = silent.address() as { port: number };
    try {
      const r = await keygate(['--url', `http://127.0.0.1:${port}`, 'overview'], { KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN });
      expect(r.code).toBe(69);
      expect(r.stderr).toContain(`cannot reach keygate at http://127.0.0.1:${port} (overview): no answer within 10 s`);
    } finally {
      silent.close();
    }
  }, 30_000);

  it('answers a wrong command line with 64 and the reason', async () => {
    const env = { KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN };
    for (const args of [['keys', 'frobnicate'], ['keys', 'list', '--output', 'xml'], ['keys', 'list'], ['keys', 'list', '--tenant', 't', '--nope'], ['keys', 'create', '--tenant', 't', '--type', 'secret']]) {
      const r = await keygate(args, env);
      expect(r.code, args.join(' ')).toBe(64);
      expect(r.stderr, args.join(' ')).toMatch(/^keygate: /);
    }
  });
});

describe('--store: bootstrapping a Redis-backed fleet without a running keygate', () => {
  it('creates a tenant on Redis that a keygate started afterwards serves', async () => {
    const env = { REDIS_URL: servers.redis.url };
    const created = await keygate(['tenants', 'create', '--name', 'boot', '--store', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    const { apiKey } = one(created.stdout);
    const listed = one((await keygate(['keys', 'list', '--tenant', apiKey.tenantId, '--store', '--json'], env)).stdout);
    expect(listed.data.map((k: { id: string }) => k.id)).toEqual([apiKey.id]);
    const kg = await servers.keygate();
    expect((await proxied(kg, '/v1/calls/x', { 'x-api-key': apiKey.key })).status).toBe(200);
  });

  it('is refused with the embedded store (its keys would vanish with the command)', async () => {
    const r = await keygate(['tenants', 'create', '--name', 'x', '--store']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('--store needs a Redis store');
    expect(r.stdout).toBe('');
  });

  it('names the Redis address (password cut out) when Redis cannot be reached', async () => {
    const r = await keygate(['keys', 'list', '--tenant', 'ten_x', '--store'], { REDIS_URL: 'redis://user:hunter2@127.0.0.1:1' });
    expect(r.code).toBe(69);
    expect(r.stderr).toContain('redis://[redacted]@127.0.0.1:1');
    expect(r.stderr).not.toContain('hunter2');
  });
});
