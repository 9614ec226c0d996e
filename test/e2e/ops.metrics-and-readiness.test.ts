import { describe, expect, it } from 'vitest';
import { createTenant, proxied, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis } from '../helpers/redis.ts';
import { useServers } from '../helpers/servers.ts';

const servers = useServers();

/** `name{labels} value` lines of the exposition, as a map. */
async function series(kg: KeygateProcess): Promise<Map<string, number>> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('metrics exposition', () => {
  it('matches a scripted mix of requests', async () => {
    const kg = await servers.keygate();
    try {
      const { key } = await createTenant(kg, { name: 'metrics' });
      const made = await self(kg, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 2 } });
      const base = await series(kg);
      for (let i = 0; i < 3; i++) await proxied(kg, '/v1/ok', { 'x-api-key': key }); // 3 allowed
      await proxied(kg, '/v1/ok'); // missing
      await proxied(kg, '/v1/ok', { 'x-api-key': 'kg_sk_nope' }); // invalid (format)
      for (let i = 0; i < 3; i++) await proxied(kg, '/v1/ok', { 'x-api-key': made.body.key }); // 2 allowed, 1 limited
      const after = await series(kg);
      const delta = (name: string) => (after.get(name) ?? 0) - (base.get(name) ?? 0);

      expect(delta('keygate_auth_decisions_total{decision="allowed",listener="public"}')).toBe(5);
      expect(delta('keygate_auth_decisions_total{decision="missing_api_key",listener="public"}')).toBe(1);
      expect(delta('keygate_auth_decisions_total{decision="invalid_api_key",listener="public"}')).toBe(1);
      expect(delta('keygate_auth_decisions_total{decision="rate_limited",listener="public"}')).toBe(1);
      expect(delta('keygate_rate_limited_total{scope="key"}')).toBe(1);
      expect(delta('keygate_requests_total{listener="public",method="GET",status_class="2xx"}')).toBe(5);
      expect(delta('keygate_requests_total{listener="public",method="GET",status_class="4xx"}')).toBe(3);
      expect(delta('keygate_upstream_duration_seconds_count')).toBe(5);
      expect(delta('keygate_auth_duration_seconds_count')).toBe(8);
      expect(delta('keygate_request_duration_seconds_count{listener="public"}')).toBe(8);
      expect(delta('keygate_key_cache_lookups_total{result="hit"}')).toBeGreaterThanOrEqual(4);
      expect(after.get('keygate_key_cache_entries')).toBeGreaterThanOrEqual(2);
      expect(after.get('keygate_websocket_connections')).toBe(0);
      expect(after.has('keygate_store_up')).toBe(true);
      expect(after.has('process_cpu_user_seconds_total')).toBe(true);
      expect(after.has('keygate_auth_duration_seconds_bucket{le="0.0001"}')).toBe(true);
      // Never a key id or a key as a label.
      const text = [...after.keys()].join('\n');
      expect(text).not.toMatch(/key_[0-9A-Z]{26}|kg_sk_/);
      expect(text).not.toContain('tenant=');
    } finally {
      await kg.stop();
    }
  });
});

describe('readiness', () => {
  it('moves through starting → ready → degraded → ready → 503 on SIGTERM', async () => {
    const down = await startRedis();
    await down.stop();
    const readyz = async (kg: { opsUrl: string }) => {
      const r = await fetch(`${kg.opsUrl}/readyz`);
      return { status: r.status, body: (await r.json()) as any };
    };
    // Redis is down at boot: the internal listener answers "starting" while keygate waits for it.
    const booting = startKeygate({ redisUrl: down.url, upstream: servers.upstream.url, waitForPorts: 'ops' });
    const kg = await booting;
    const starting = await readyz(kg);
    expect(starting.status).toBe(503);
    expect(starting.body.status).toBe('starting');
    await down.start();
    await expect.poll(async () => (await readyz(kg)).body.status, { timeout: 10_000 }).toBe('ready');
    const ready = await readyz(kg);
    expect(ready.status).toBe(200);
    expect(ready.body.checks.redis.status).toBe('up');
    expect(ready.body.checks.redis.latencyMs).toBeGreaterThanOrEqual(0);
    expect(ready.body.checks.upstream.status).toBe('up');
    expect(ready.body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(ready.body.uptimeSeconds).toBeGreaterThanOrEqual(0);

    await down.stop();
    await expect.poll(async () => (await readyz(kg)).body.status).toBe('degraded');
    const degraded = await readyz(kg);
    expect(degraded.status).toBe(200); // a Redis blip must not empty the Service
    expect(degraded.body.status).toBe('degraded');
    expect(degraded.body.checks.redis.status).toBe('down');
    await down.start();
    await expect.poll(async () => (await readyz(kg)).body.status, { timeout: 10_000 }).toBe('ready');

    kg.proc.kill('SIGTERM');
    // From the moment the signal is handled: 503 "stopping", then the listener closes.
    const seen: string[] = [];
    await expect
      .poll(async () => {
        const r = await readyz(kg).catch(() => ({ status: 0, body: { status: 'closed' } }));
        seen.push(`${r.status} ${r.body.status}`);
        return r.status === 200 ? 'ready' : 'not ready';
      })
      .toBe('not ready');
    expect(seen.filter((s) => !s.startsWith('200 '))[0]).toMatch(/^(503 stopping|0 closed)$/);
    expect(await kg.exited).toBe(0);
    await down.close();
  });

  it('answers 503 while Redis is down when readiness.requireStore is set', async () => {
    const kg = await servers.keygate({ config: { readiness: { requireStore: true } } });
    try {
      expect((await fetch(`${kg.opsUrl}/readyz`)).status).toBe(200);
      servers.redis.pause();
      try {
        expect((await fetch(`${kg.opsUrl}/readyz`)).status).toBe(503);
      } finally {
        servers.redis.resume();
      }
      await expect.poll(async () => (await fetch(`${kg.opsUrl}/readyz`)).status).toBe(200);
    } finally {
      await kg.stop();
    }
  });
});
