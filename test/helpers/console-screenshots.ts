// `npm run console:screenshots`: starts redis-server, an upstream, a webhook receiver and keygate (built CLI),
// seeds 3,000 keys over 30 tenants, sends traffic, writes 90 days of usage history for five tenants straight
// into the usage counters (so the charts show more than the minutes the script ran), and photographs the main
// pages in Chromium into docs/console/ (light at 1280 px, plus dark and a phone).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { chromium } from 'playwright-core';
import { RedisStore } from '../../dist/store/redis/redis-store.js';
import { admin } from './api.ts';
import { OPERATORS, operatorConfig, seedFleet, sendTraffic, signIn } from './console.ts';
import { root, startKeygate } from './keygate.ts';
import { startRedis } from './redis.ts';
import { tool } from './tools.ts';

const out = join(root, 'docs', 'console');
mkdirSync(out, { recursive: true });
const redis = await startRedis();
const upstream = createServer((_req, res) => res.end('{"ok":true}'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
let hits = 0;
// Every third delivery fails, so the webhooks page shows retries and dead letters.
const receiver = createServer((_req, res) => {
  res.statusCode = ++hits % 3 === 0 ? 500 : 200;
  res.end();
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
const kg = await startKeygate({
  redisUrl: redis.url,
  upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
  config: {
    admin: { tokens: operatorConfig },
    webhooks: { enabled: true, allowPrivateTargets: true, retryBaseMs: 200, retryMaxMs: 400, retryForHours: 0.0005 },
  },
});
try {
  // Made by the operator alice, so the platform's audit log names her.
  await call('/webhooks', OPERATORS.alice.token, 'POST', { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/keygate`, description: 'billing', events: ['key.created', 'key.revoked', 'key.rotated'] });
  await call('/webhooks', OPERATORS.alice.token, 'POST', { url: 'http://127.0.0.1:9/down', description: 'audit mirror (down)', events: ['key.revoked'] });
  const seeded = await seedFleet(kg, 30, 99);
  const named = await admin(kg, 'POST', '/tenants', { name: 'Acme Voice', plan: 'pro' });
  const acme = { id: named.body.tenant.id as string, key: named.body.apiKey.key as string };
  for (const [i, s] of [acme, ...seeded.slice(0, 6)].entries()) await sendTraffic(kg, s.key, 60 - i * 8);
  const bot = await admin(kg, 'POST', `/tenants/${acme.id}/api-keys`, { name: 'voice-bot', permissions: ['calls:read', 'calls:write'] });
  await sendTraffic(kg, bot.body.key, 40);
  await admin(kg, 'PATCH', `/tenants/${acme.id}/api-keys/${bot.body.id}`, { rateLimit: { requestsPerMinute: 600 } });
  const old = await admin(kg, 'POST', `/tenants/${acme.id}/api-keys`, { name: 'legacy-ivr' });
  await call(`/tenants/${acme.id}/api-keys/${old.body.id}`, OPERATORS.alice.token, 'DELETE');

  // History: what the usage flush would have written over the last 90 days (an office-hours curve).
  const store = new RedisStore({ client: new Redis(redis.url), subscriber: new Redis(redis.url), prefix: 'kg:', channel: 'keygate:invalidate', auditMaxEntries: 10_000 });
  const now = Date.now();
  const deltas = [];
  for (const [t, tenant] of [acme, ...seeded.slice(0, 4)].entries()) {
    const scale = 1 / (t + 1);
    for (let h = 1; h < 24 * 7; h++) {
      const at = new Date(now - h * 3_600_000);
      const office = Math.max(0.1, Math.sin(((at.getUTCHours() - 6) / 24) * 2 * Math.PI));
      const allowed = Math.round(900 * office * scale * (0.8 + Math.random() * 0.4));
      const counts = { allowed, denied: Math.round(allowed * 0.02), rateLimited: Math.round(allowed * 0.05 * office), sessions: Math.round(allowed / 40), sessionMs: Math.round(allowed / 40) * 150_000 };
      deltas.push({ tenantId: tenant.id, keyId: t === 0 ? bot.body.id : 'key_seeded', period: at.toISOString().slice(0, 13), counts, refused: refusedOf(counts.denied, counts.rateLimited) });
    }
    for (let d = 1; d < 90; d++) {
      const at = new Date(now - d * 86_400_000);
      const allowed = Math.round(12_000 * scale * (1 + d / 120) * (at.getUTCDay() % 6 === 0 ? 0.4 : 1));
      const [denied, rateLimited] = [Math.round(allowed * 0.02), Math.round(allowed * 0.04)];
      deltas.push({ tenantId: tenant.id, keyId: t === 0 ? bot.body.id : 'key_seeded', period: at.toISOString().slice(0, 10), counts: { allowed, denied, rateLimited, sessions: Math.round(allowed / 40), sessionMs: Math.round(allowed / 40) * 150_000 }, refused: refusedOf(denied, rateLimited) });
    }
  }
  await store.addUsage({ writer: 'screenshots', seq: 1, deltas });
  await store.close();
  await new Promise((r) => setTimeout(r, 3_000)); // deliveries and their retries
  const dead = (await admin(kg, 'GET', '/webhooks/dead-letters')).body.data as Array<{ key: string }>;
  if (dead[0]) await call(`/webhooks/dead-letters/${encodeURIComponent(dead[0].key)}/redeliver`, OPERATORS.alice.token, 'POST');

  const browser = await chromium.launch({ executablePath: tool('chromium'), args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
  const shoot = async (name: string, hash: string, ready: string, opts: { dark?: boolean; phone?: boolean; token?: string } = {}) => {
    const context = await browser.newContext({ colorScheme: opts.dark ? 'dark' : 'light', viewport: opts.phone ? { width: 390, height: 844 } : { width: 1280, height: 900 }, deviceScaleFactor: opts.phone ? 2 : 1 });
    const page = await signIn(context, kg, opts.token ?? OPERATORS.alice.token);
    await page.goto(`${kg.opsUrl}/console${hash}`);
    await page.getByText(ready).first().waitFor();
    await page.waitForTimeout(400);
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: !opts.phone });
    await context.close();
    process.stdout.write(`docs/console/${name}.png\n`);
  };
  await shoot('fleet', '#/fleet', 'Top tenants today');
  await shoot('tenants', '#/tenants', 'Acme Voice');
  await shoot('tenant', `#/tenants/${acme.id}`, 'voice-bot');
  await shoot('key', `#/tenants/${acme.id}/keys/${bot.body.id}`, 'key.updated');
  await shoot('audit', `#/audit/${acme.id}`, 'operator:alice');
  await shoot('audit-platform', '#/audit', 'webhook.created');
  await shoot('webhooks', '#/webhooks', 'Dead letters');
  await shoot('tenant-dark', `#/tenants/${acme.id}`, 'voice-bot', { dark: true });
  await shoot('fleet-phone', '#/fleet', 'Top tenants today', { phone: true });
  await shoot('tenant-read-operator', `#/tenants/${acme.id}`, 'voice-bot', { token: OPERATORS.support.token });
  await browser.close();
} finally {
  await kg.stop();
  upstream.close();
  receiver.close();
  await redis.close();
}

async function call(path: string, token: string, method: string, body?: unknown) {
  const res = await fetch(`${kg.opsUrl}/admin/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
}

/** Refusals split by code as a tenant's traffic would have them: mostly rate limits, some quota, some permissions and routes. */
function refusedOf(denied: number, rateLimited: number): Record<string, number> {
  const quota = Math.floor(rateLimited / 5);
  const route = Math.floor(denied / 3);
  return Object.fromEntries(Object.entries({ rate_limited: rateLimited - quota, quota_exceeded: quota, route_not_allowed: route, insufficient_permissions: denied - route }).filter(([, n]) => n > 0));
}
