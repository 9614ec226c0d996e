import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { admin, call } from './api.ts';
import type { KeygateProcess } from './keygate.ts';

// The operator console in a real browser: operator tokens for a test keygate, signing in, axe-core, and a
// fleet of tenants and keys to look at.

export const OPERATORS = {
  alice: { token: 'alice-write-token-0123456789', role: 'write' },
  support: { token: 'support-read-token-0123456789', role: 'read' },
} as const;

/** `admin.tokens` for the operators above (the configuration holds only their SHA-256). */
export const operatorConfig = Object.entries(OPERATORS).map(([name, o]) => ({ name, role: o.role, sha256: createHash('sha256').update(o.token).digest('hex') }));

/** POST /console/login with `token` from `headers` (the console's own Origin unless given), as the page does. */
export const consoleLogin = (kg: KeygateProcess, token: string, headers: Record<string, string> = { origin: kg.opsUrl }) =>
  call<any>(`${kg.opsUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ token }) });

/** The session cookie's value a sign-in set, if it set one. */
export const cookieOf = (r: { headers: Headers }): string | undefined => /kg_console=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')?.[1];

/** A call to the admin API through the console's door (`/console/api/admin/v1…`). */
export const consoleApi = (kg: KeygateProcess, path: string, headers: Record<string, string>, init: RequestInit = {}) =>
  call<any>(`${kg.opsUrl}/console/api/admin/v1${path}`, { ...init, headers });

/** Signs in through the login page with the keyboard only (focus, type, Enter). */
export async function signIn(context: BrowserContext, kg: KeygateProcess, token: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${kg.opsUrl}/console/login`);
  await page.getByLabel('Admin or operator token').focus();
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
  return page;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules). */
export async function seriousViolations(page: Page): Promise<string[]> {
  // Injected as a script element would be refused by the console's CSP; evaluate() runs it in the page instead.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const g = globalThis as unknown as { document: unknown; axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: Array<{ id: string; impact: string; nodes: Array<{ target: string[] }> }> }> } };
    return (await g.axe.run(g.document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })).violations;
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

/**
 * `tenants` tenants (plan `enterprise`) with `keysPerTenant` keys each besides their first, created through the
 * admin API `concurrency` at a time. Returns the tenants' ids and one key value of each.
 */
export async function seedFleet(kg: KeygateProcess, tenants: number, keysPerTenant: number, concurrency = 16): Promise<Array<{ id: string; key: string }>> {
  const made: Array<{ id: string; key: string }> = [];
  const jobs: Array<() => Promise<void>> = [];
  for (let t = 0; t < tenants; t++) {
    jobs.push(async () => {
      const r = await created(kg, '/tenants', { name: `tenant-${String(t).padStart(4, '0')}`, plan: 'enterprise' });
      made.push({ id: r.body.tenant.id, key: r.body.apiKey.key });
    });
  }
  await runAll(jobs, concurrency);
  // One tenant's keys one after another (creates on one tenant contend on its key count); tenants in parallel.
  const keyJobs = made.map(({ id }) => async () => {
    for (let i = 0; i < keysPerTenant; i++) {
      await created(kg, `/tenants/${id}/api-keys`, { name: `svc-${i}`, permissions: ['calls:read'] });
    }
  });
  await runAll(keyJobs, concurrency);
  return made;
}

/**
 * An admin POST, sent again (up to 5 times) when answered 503: seeding is setup, not what is tested, and a
 * loaded machine sometimes times a store command out. Each retry is printed, so they are seen.
 */
async function created(kg: KeygateProcess, path: string, body: unknown) {
  for (let attempt = 1; ; attempt++) {
    const r = await admin(kg, 'POST', path, body);
    if (r.status === 201) return r;
    if (r.status !== 503 || attempt === 5) throw new Error(`seed ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    console.warn(`seed ${path}: 503 ${r.body?.error?.message}; retrying`);
    await new Promise((res) => setTimeout(res, 200 * attempt));
  }
}

async function runAll(jobs: Array<() => Promise<void>>, concurrency: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < jobs.length) await jobs[next++]!();
  }));
}

/** Some proxied traffic for a tenant's charts: allowed requests and refusals. */
export async function sendTraffic(kg: KeygateProcess, key: string, allowed: number): Promise<void> {
  for (let i = 0; i < allowed; i++) await call(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': key } });
  for (let i = 0; i < Math.ceil(allowed / 5); i++) await call(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': `${key.slice(0, -4)}AAAA` } });
}

/**
 * Loads a console page: the time from navigation to its data on screen (`ready`), and the slowest answer of
 * the console API calls it made (request sent to response end, as Chromium timed it), in ms.
 */
export async function timePage(page: Page, url: string, ready: (p: Page) => Promise<unknown>): Promise<{ pageMs: number; slowestApiMs: number }> {
  const api: number[] = [];
  const onDone = (r: Request) => {
    if (r.url().includes('/console/api/')) api.push(r.timing().responseEnd - r.timing().requestStart);
  };
  page.on('requestfinished', onDone);
  const started = performance.now();
  await page.goto(url);
  await ready(page);
  const pageMs = Math.round(performance.now() - started);
  page.off('requestfinished', onDone);
  return { pageMs, slowestApiMs: Math.round(Math.max(0, ...api)) };
}

export type { Browser };
