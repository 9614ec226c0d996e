import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, call } from '../helpers/api.ts';
import { OPERATORS, operatorConfig, seedFleet, sendTraffic, seriousViolations, signIn, timePage } from '../helpers/console.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { tool } from '../helpers/tools.ts';

// The operator console in Debian's Chromium (playwright-core), against keygate on Redis holding a few thousand
// keys: an operator signs in, creates a tenant and a key, sends traffic through the proxy, sees it in the
// tenant's chart, revokes the key and finds the audit entry naming them; a read operator sees no revoke button
// and the API refuses them; axe-core finds no serious or critical violation on any page, light or dark, wide
// or phone-sized. Page answer times are printed, not asserted.

let redis: RedisServer;
let upstream: Server;
let kg: KeygateProcess;
let browser: Browser;
let seeded: Array<{ id: string; key: string }>;
const timings: Record<string, { pageMs: number; slowestApiMs: number }> = {};

beforeAll(async () => {
  const executablePath = tool('chromium');
  redis = await startRedis();
  upstream = createServer((_req, res) => res.end('{"ok":true}'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  kg = await startKeygate({
    redisUrl: redis.url,
    upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    config: { admin: { tokens: operatorConfig }, webhooks: { enabled: true, allowPrivateTargets: true, retryBaseMs: 100, retryMaxMs: 200, retryForHours: 0.0003 } },
  });
  // A platform endpoint (nothing listens on port 9): its creation is in the platform's audit log, and the
  // key.revoked events sent to it become dead letters within a second or two.
  expect((await admin(kg, 'POST', '/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['key.revoked'] })).status).toBe(201);
  // 30 tenants × (1 + 99) keys = 3,000 keys, and traffic for a few of them.
  seeded = await seedFleet(kg, 30, 99);
  for (const s of seeded.slice(0, 5)) await sendTraffic(kg, s.key, 10);
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await kg?.stop();
  upstream?.close();
  await redis?.close();
  // Measured, not asserted (the machine is shared): what each page took from navigation to its data on screen.
  if (Object.keys(timings).length) console.log(`console page times (ms, 3,000 keys on Redis: page to data on screen, slowest API answer): ${JSON.stringify(timings)}`);
});

describe('the console in a real browser', () => {
  it('a write operator creates a tenant and a key, sees its traffic in the chart, revokes it and finds the audit entry', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await signIn(context, kg, OPERATORS.alice.token);
    expect(await page.getByTestId('operator').textContent()).toContain('alice');
    expect(await seriousViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Tenants' }).click();
    await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
    await page.getByText('Create a tenant').click();
    await page.getByLabel('Name', { exact: true }).fill('acme-console');
    await page.getByRole('button', { name: 'Create', exact: true }).click();
    await page.getByTestId('new-key').waitFor();
    await page.getByRole('button', { name: 'Done' }).click();
    expect(await seriousViolations(page)).toEqual([]);
    await page.getByLabel('Search by name or id').fill('acme-console');
    await page.getByRole('link', { name: 'acme-console' }).click();
    await page.getByRole('heading', { level: 1, name: 'acme-console' }).waitFor();

    await page.getByText('Create a key').click();
    await page.getByLabel('Name', { exact: true }).fill('voice-bot');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.getByTestId('new-key').textContent())!;
    expect(key).toMatch(/^[A-Za-z0-9_]+$/);
    await page.getByRole('button', { name: 'Done' }).click();

    for (let i = 0; i < 25; i++) expect((await call(`${kg.url}/v1/calls/${i}`, { headers: { 'x-api-key': key } })).status).toBe(200);
    await page.getByRole('button', { name: 'Daily, 90 days' }).click();
    await page.getByRole('button', { name: 'Hourly, 7 days' }).click();
    await expect.poll(() => page.getByTestId('usage-total').textContent()).toContain('25');
    expect(await seriousViolations(page)).toEqual([]);

    // Refused by its rate limit, the key's refusals show in the tenant's chart by their code.
    const row = page.locator('tr', { has: page.getByRole('link', { name: 'voice-bot' }) });
    const keyId = await row.getAttribute('data-key');
    const tenantId = new URL(page.url()).hash.split('/')[2]!;
    expect((await admin(kg, 'PATCH', `/tenants/${tenantId}/api-keys/${keyId}`, { rateLimit: { requestsPerMinute: 1 } })).status).toBe(200);
    let limited = 0;
    for (let i = 0; i < 60 && limited < 3; i++) if ((await call(`${kg.url}/v1/calls/${i}`, { headers: { 'x-api-key': key } })).status === 429) limited++;
    expect(limited).toBe(3);
    await page.getByRole('button', { name: 'Daily, 90 days' }).click();
    await page.getByRole('button', { name: 'Hourly, 7 days' }).click();
    await expect.poll(() => page.getByTestId('refusals-by-code').textContent()).toMatch(/rate_limited 3\b/);
    expect(await seriousViolations(page)).toEqual([]);

    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await row.waitFor({ state: 'detached' });
    expect((await call(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': key } })).status).toBe(401);

    await page.goto(`${kg.opsUrl}/console#/tenants/${tenantId}/keys/${keyId}`);
    const revoked = page.locator('[data-testid="audit"] tr', { hasText: 'key.revoked' });
    await revoked.waitFor();
    expect(await revoked.textContent()).toContain('operator:alice');
    expect(await seriousViolations(page)).toEqual([]);

    // The key.revoked event is a dead letter at the platform's endpoint: redelivered from the console, with the
    // operator's name in the platform's audit log.
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { level: 1, name: 'Webhooks' }).waitFor();
    await expect.poll(async () => {
      await page.reload();
      return page.getByRole('button', { name: 'Redeliver' }).count();
    }, { timeout: 20_000 }).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Redeliver' }).first().click();
    await page.getByRole('dialog').getByRole('button', { name: 'Redeliver' }).click();
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: 'Audit log' }).click();
    const redelivered = page.locator('[data-testid="audit"] tr', { hasText: 'webhook.redelivered' });
    await redelivered.waitFor();
    expect(await redelivered.textContent()).toContain('operator:alice');
    expect(await seriousViolations(page)).toEqual([]);
    await context.close();
  }, 120_000);

  it('a read operator sees no write buttons, and the API refuses their writes', async () => {
    const context = await browser.newContext();
    const page = await signIn(context, kg, OPERATORS.support.token);
    const target = seeded[0]!;
    await page.goto(`${kg.opsUrl}/console#/tenants/${target.id}`);
    await page.getByTestId('keys').waitFor();
    expect(await page.getByRole('button', { name: 'Revoke' }).count()).toBe(0);
    expect(await page.getByText('Create a key').count()).toBe(0);
    // The same call the write operator's button makes, from the read operator's page and session.
    const keys = await admin(kg, 'GET', `/tenants/${target.id}/api-keys?limit=1`);
    const refused = await page.evaluate(async (path) => {
      const res = await fetch(path, { method: 'DELETE' });
      return { status: res.status, body: (await res.json()) as { error: { code: string } } };
    }, `/console/api/admin/v1/tenants/${target.id}/api-keys/${keys.body.data[0].id}`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('insufficient_permissions');
    expect((await admin(kg, 'GET', `/tenants/${target.id}/api-keys/${keys.body.data[0].id}`)).status).toBe(200);
    await context.close();
  }, 60_000);

  it("a page on another origin cannot use a signed-in operator's session", async () => {
    const evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    try {
      const context = await browser.newContext();
      await signIn(context, kg, OPERATORS.alice.token);
      const page = await context.newPage();
      // localhost, not 127.0.0.1: another site, as an attacker's page would be.
      await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      const api = `${kg.opsUrl}/console/api/admin/v1`;
      const attempts = await page.evaluate(async (api) => {
        const out: string[] = [];
        // A form-like cross-site POST (no preflight), and a credentialed read.
        await fetch(`${api}/tenants`, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"name":"csrf-from-browser"}' }).then((r) => out.push(`post ${r.type}`), (e: unknown) => out.push(`post ${String(e)}`));
        await fetch(`${api}/whoami`, { credentials: 'include' }).then((r) => out.push(`read ${r.status}`), (e: unknown) => out.push(`read refused ${String(e)}`));
        return out;
      }, api);
      expect(attempts.some((a) => a.startsWith('read 200'))).toBe(false);
      expect((await admin(kg, 'GET', '/tenant-search?q=csrf-from-browser')).body.data).toEqual([]);
      await context.close();
    } finally {
      evil.close();
    }
  }, 60_000);

  it('every page loads over 3,000 keys with no serious accessibility violation, light and dark, desktop and phone', async () => {
    const target = seeded[0]!;
    const keyId = (await admin(kg, 'GET', `/tenants/${target.id}/api-keys?limit=1`)).body.data[0].id as string;
    const pages: Array<[string, string, (p: Page) => Promise<unknown>]> = [
      ['fleet', '#/fleet', (p) => p.getByText('Top tenants today').waitFor()],
      ['tenants', '#/tenants', (p) => p.getByTestId('tenants').waitFor()],
      ['tenant', `#/tenants/${target.id}`, (p) => Promise.all([p.getByTestId('keys').waitFor(), p.getByTestId('usage-total').waitFor()])],
      ['key', `#/tenants/${target.id}/keys/${keyId}`, (p) => Promise.all([p.getByTestId('audit').waitFor(), p.getByTestId('usage-total').waitFor()])],
      ['audit', `#/audit/${target.id}`, (p) => p.getByTestId('audit').waitFor()],
      ['platform audit', '#/audit', (p) => p.locator('[data-testid="audit"] tr', { hasText: 'webhook.created' }).waitFor()],
      ['webhooks', '#/webhooks', (p) => p.getByRole('heading', { name: 'Dead letters' }).waitFor()],
    ];
    for (const scheme of ['light', 'dark'] as const) {
      for (const viewport of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
        const context = await browser.newContext({ colorScheme: scheme, viewport });
        const page = await signIn(context, kg, OPERATORS.support.token);
        for (const [name, hash, ready] of pages) {
          // A new document each time, so the time includes loading the app and its first API calls.
          await page.goto('about:blank');
          const t = await timePage(page, `${kg.opsUrl}/console${hash}`, ready);
          if (scheme === 'light' && viewport.width === 1280) timings[name] = t;
          expect(await seriousViolations(page), `${name}, ${scheme}, ${viewport.width} px`).toEqual([]);
          // Nothing wider than the screen but the tables' own scrolling boxes.
          const fits = await page.evaluate(() => {
            const g = globalThis as unknown as { document: { documentElement: { scrollWidth: number } }; innerWidth: number };
            return g.document.documentElement.scrollWidth <= g.innerWidth + 1;
          });
          expect(fits, `${name} fits ${viewport.width} px`).toBe(true);
        }
        await context.close();
      }
    }
  }, 240_000);
});
