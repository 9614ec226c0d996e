// `BENCH_ONLY=console npm run bench`: how fast each console page shows its data, against keygate on Redis with
// about 3,000 keys over a few dozen tenants, usage history and audit entries. Chromium (playwright-core) opens
// each page cold (a new document: the app is loaded, the session checked, the page's data fetched and drawn)
// and by an in-app route change (the app already running), and reads the app's own marks (console/src/ready.ts:
// `kg:ready` once the page's fetches have rendered and the browser has painted, `kg:route` at the route
// change). Each console API call's server time is its time to first byte on loopback, as Chromium timed it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { chromium, type Page, type Request } from 'playwright-core';
import { RedisStore } from '../dist/store/redis/redis-store.js';
import { admin } from '../test/helpers/api.ts';
import { OPERATORS, operatorConfig, seedFleet, sendTraffic, signIn } from '../test/helpers/console.ts';
import { root, startKeygate } from '../test/helpers/keygate.ts';
import { tool } from '../test/helpers/tools.ts';
import { percentile } from './lib.ts';

const TENANTS = 36;
const KEYS_PER_TENANT = 82; // besides each tenant's first: 36 × 83 = 2,988 keys
const ROUNDS = Number(process.env.BENCH_CONSOLE_ROUNDS ?? 7);

interface ApiCall {
  path: string;
  /** Request sent to first byte of the answer: the server's time on loopback. */
  serverMs: number;
  /** Request sent to the answer's last byte. */
  totalMs: number;
}
interface PageFigures {
  /** Cold navigations: navigation start to the HTML received, to the app evaluated, to the sign-in check answered. */
  coldSteps: { htmlMs: number; bootMs: number; whoamiMs: number };
  /** Navigation start to the page's data painted (a new document each time). */
  coldMs: { median: number; max: number };
  /** Route change (the app already running) to the page's data painted. */
  routeMs: { median: number; max: number };
  /** CPU time of the browser's renderer processes (median) over the same spans: the page's own cost, load aside. */
  mainThreadMs: { navigation: number; route: number };
  /** The page's console API calls, each one's median server time over the rounds. */
  api: Array<{ path: string; serverMs: number; totalMs: number }>;
}

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
const round1 = (x: number) => Math.round(x * 10) / 10;
const med = (xs: number[]) => round1(percentile([...xs].sort((a, b) => a - b), 50));

export async function consolePhase(redisUrl: string): Promise<unknown> {
  const upstream = createServer((_req, res) => res.end('{"ok":true}'));
  let hits = 0;
  // Every third delivery fails and one endpoint never answers: deliveries, retries and dead letters to show.
  const receiver = createServer((_req, res) => {
    res.statusCode = ++hits % 3 === 0 ? 500 : 200;
    res.end();
  });
  const [upstreamPort, receiverPort] = [await listen(upstream), await listen(receiver)];
  const kg = await startKeygate({
    redisUrl,
    upstream: `http://127.0.0.1:${upstreamPort}`,
    config: { admin: { tokens: operatorConfig }, webhooks: { enabled: true, allowPrivateTargets: true, retryBaseMs: 200, retryMaxMs: 400, retryForHours: 0.0005 } },
  });
  try {
    const seedStarted = performance.now();
    await admin(kg, 'POST', '/webhooks', { url: `http://127.0.0.1:${receiverPort}/hook`, description: 'billing', events: ['key.created', 'key.revoked', 'key.rotated'] });
    await admin(kg, 'POST', '/webhooks', { url: 'http://127.0.0.1:9/down', description: 'down', events: ['key.revoked'] });
    const seeded = await seedFleet(kg, TENANTS, KEYS_PER_TENANT);
    const target = seeded[0]!;
    const keys = (await admin(kg, 'GET', `/tenants/${target.id}/api-keys?limit=100`)).body.data as Array<{ id: string }>;
    for (const s of seeded.slice(0, 8)) await sendTraffic(kg, s.key, 20);
    for (const k of keys.slice(1, 4)) await admin(kg, 'DELETE', `/tenants/${target.id}/api-keys/${k.id}`);
    const keyId = keys[5]!.id;
    await history(redisUrl, seeded.map((s) => s.id), target.id, keys.slice(4, 30).map((k) => k.id));
    const seedSeconds = Math.round((performance.now() - seedStarted) / 1000);
    console.log(`console: seeded ${TENANTS} tenants, ${TENANTS * (KEYS_PER_TENANT + 1)} keys and 90 days of usage in ${seedSeconds} s`);

    const pages: Array<[string, string]> = [
      ['fleet', '#/fleet'],
      ['tenants', '#/tenants'],
      ['tenant (charts, keys)', `#/tenants/${target.id}`],
      ['key', `#/tenants/${target.id}/keys/${keyId}`],
      ['audit', `#/audit/${target.id}`],
      ['webhooks', '#/webhooks'],
    ];
    const browser = await chromium.launch({ executablePath: tool('chromium'), args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'] });
    const load = loadavg().map((l) => round1(l));
    const figures: Record<string, PageFigures> = {};
    const systemInfo = await browser.newBrowserCDPSession();
    rendererCpuMs = async () => {
      const { processInfo } = await systemInfo.send('SystemInfo.getProcessInfo');
      return processInfo.filter((p) => p.type === 'renderer').reduce((n, p) => n + p.cpuTime * 1000, 0);
    };
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await signIn(context, kg, OPERATORS.alice.token);
      const cold: Record<string, number[]> = {};
      const cpu: Record<string, Array<[number, number]>> = {};
      const steps: Record<string, Array<{ htmlMs: number; bootMs: number; whoamiMs: number }>> = {};
      const routed: Record<string, number[]> = {};
      const calls: Record<string, ApiCall[]> = {};
      for (let r = 0; r < ROUNDS; r++) {
        for (const [name, hash] of pages) {
          // A new document each time (the query makes the URL new; the server serves the app for any): the app is
          // loaded, started and signed in again. The same site, so the same renderer process: its CPU time adds up.
          const [coldMs, coldCalls, coldCpu] = await timed(page, () => page.goto(`${kg.opsUrl}/console?visit=${r}-${name.length}${hash}`).then(() => undefined), 'navigation');
          const step = (await page.evaluate(`(() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const who = performance.getEntriesByType('resource').find((r) => r.name.endsWith('/whoami'));
            return { htmlMs: nav.responseEnd, bootMs: performance.getEntriesByName('kg:boot')[0]?.startTime ?? -1, whoamiMs: who ? who.responseEnd : -1 };
          })()`)) as { htmlMs: number; bootMs: number; whoamiMs: number };
          // From another page of the app (the tenants list, or the fleet for the tenants list itself).
          await route(page, name === 'tenants' ? '#/fleet' : '#/tenants');
          await page.waitForSelector('html[data-ready]');
          const [routeMs, , routeCpu] = await timed(page, () => route(page, hash), 'route');
          if (r === 0) continue; // the first round warms Chromium's and keygate's caches
          (cold[name] ??= []).push(coldMs);
          (steps[name] ??= []).push(step);
          (cpu[name] ??= []).push([coldCpu, routeCpu]);
          (routed[name] ??= []).push(routeMs);
          (calls[name] ??= []).push(...coldCalls);
        }
      }
      for (const [name] of pages) {
        const byPath = new Map<string, ApiCall[]>();
        for (const c of calls[name]!) byPath.set(c.path, [...(byPath.get(c.path) ?? []), c]);
        figures[name] = {
          coldMs: { median: med(cold[name]!), max: round1(Math.max(...cold[name]!)) },
          coldSteps: { htmlMs: med(steps[name]!.map((x) => x.htmlMs)), bootMs: med(steps[name]!.map((x) => x.bootMs)), whoamiMs: med(steps[name]!.map((x) => x.whoamiMs)) },
          routeMs: { median: med(routed[name]!), max: round1(Math.max(...routed[name]!)) },
          mainThreadMs: { navigation: med(cpu[name]!.map((c) => c[0])), route: med(cpu[name]!.map((c) => c[1])) },
          api: [...byPath].map(([path, cs]) => ({ path, serverMs: med(cs.map((c) => c.serverMs)), totalMs: med(cs.map((c) => c.totalMs)) })),
        };
      }
      await context.close();
    } finally {
      await browser.close();
    }
    const bundle = ['index.html', 'assets/app.js', 'assets/app.css'].reduce((n, f) => n + gzipSync(readFileSync(join(root, 'dist/console-ui', f)), { level: 9 }).length, 0);
    printTable(figures, load, loadavg().map((l) => round1(l)));
    console.log(`console bundle: ${bundle} B gzipped`);
    return { tenants: TENANTS, keys: TENANTS * (KEYS_PER_TENANT + 1), rounds: ROUNDS - 1, loadAverageBefore: load, loadAverageAfter: loadavg().map((l) => round1(l)), bundleGzipBytes: bundle, pages: figures };
  } finally {
    await kg.stop();
    upstream.close();
    receiver.close();
  }
}

/** CPU ms of the browser's renderer processes so far (set once the browser is up). */
let rendererCpuMs: () => Promise<number> = () => Promise.resolve(0);

/** An in-app route change, as a click on a link makes it (the stale mark is cleared first, so it is not read). */
const route = (page: Page, hash: string): Promise<void> => page.evaluate(`document.documentElement.removeAttribute('data-ready'); location.hash = ${JSON.stringify(hash)}; undefined`);

/**
 * Runs `go` and waits for the app's `kg:ready` mark: the time from navigation start (`navigation`) or from the
 * last `kg:route` mark (`route`) to it, and the console API calls made meanwhile.
 */
async function timed(page: Page, go: () => Promise<void>, from: 'navigation' | 'route'): Promise<[number, ApiCall[], number]> {
  const calls: ApiCall[] = [];
  // CPU time the browser's renderer processes spent (Chromium's own per-process accounting): what the page
  // costs whatever the machine's load, beside the wall-clock time that the load stretches.
  const before = await rendererCpuMs();
  const onDone = (r: Request) => {
    const url = new URL(r.url());
    if (!url.pathname.startsWith('/console/api/')) return;
    const t = r.timing();
    calls.push({ path: url.pathname.replace('/console/api/admin/v1', '').replace(/ten_[0-9A-Z]{26}/g, '{id}').replace(/key_[0-9A-Za-z]+/g, '{keyId}') + (url.search ? `?${[...url.searchParams.keys()].join('&')}` : ''), serverMs: t.responseStart - t.requestStart, totalMs: t.responseEnd - t.requestStart });
  };
  page.on('requestfinished', onDone);
  await go();
  await page.waitForSelector('html[data-ready]', { timeout: 30_000 });
  // Requests still finishing when the mark fired are counted too.
  await page.waitForLoadState('networkidle').catch(() => {});
  page.off('requestfinished', onDone);
  const ms = await page.evaluate((from) => {
    const ready = performance.getEntriesByName('kg:ready').at(-1)!.startTime;
    if (from === 'navigation') return performance.getEntriesByName('kg:ready')[0]!.startTime;
    return ready - performance.getEntriesByName('kg:route').at(-1)!.startTime;
  }, from);
  const cpuMs = (await rendererCpuMs()) - before;
  return [round1(ms), calls, round1(cpuMs)];
}

/** 90 days of daily and 14 days of hourly usage for every tenant (and some keys of the first), as the flush writes it. */
async function history(redisUrl: string, tenantIds: string[], target: string, keyIds: string[]): Promise<void> {
  const store = new RedisStore({ client: new Redis(redisUrl), subscriber: new Redis(redisUrl), prefix: 'kg:', channel: 'keygate:invalidate', auditMaxEntries: 10_000 });
  const now = Date.now();
  let seq = 0;
  for (const [t, tenantId] of tenantIds.entries()) {
    const deltas = [];
    const scale = 1 / (1 + (t % 7));
    const owners = tenantId === target ? keyIds : ['key_history'];
    for (let h = 1; h < 24 * 14; h++) {
      const at = new Date(now - h * 3_600_000);
      const office = Math.max(0.1, Math.sin(((at.getUTCHours() - 6) / 24) * 2 * Math.PI));
      const allowed = Math.round(900 * office * scale);
      const keyId = owners[h % owners.length]!;
      const [denied, rateLimited] = [Math.round(allowed * 0.02), Math.round(allowed * 0.05 * office)];
      deltas.push({ tenantId, keyId, period: at.toISOString().slice(0, 13), counts: { allowed, denied, rateLimited, sessions: Math.round(allowed / 40), sessionMs: Math.round(allowed / 40) * 150_000 }, refused: refusedOf(denied, rateLimited) });
    }
    for (let d = 1; d < 90; d++) {
      const at = new Date(now - d * 86_400_000);
      const allowed = Math.round(12_000 * scale);
      const [denied, rateLimited] = [Math.round(allowed * 0.02), Math.round(allowed * 0.04)];
      deltas.push({ tenantId, keyId: owners[d % owners.length]!, period: at.toISOString().slice(0, 10), counts: { allowed, denied, rateLimited, sessions: Math.round(allowed / 40), sessionMs: Math.round(allowed / 40) * 150_000 }, refused: refusedOf(denied, rateLimited) });
    }
    await store.addUsage({ writer: 'bench-console', seq: ++seq, deltas });
  }
  await store.close();
}

/** Refusals split by code as a tenant's traffic would have them: mostly rate limits, some quota, some permissions and routes. */
function refusedOf(denied: number, rateLimited: number): Record<string, number> {
  const quota = Math.floor(rateLimited / 5);
  const route = Math.floor(denied / 3);
  return Object.fromEntries(Object.entries({ rate_limited: rateLimited - quota, quota_exceeded: quota, route_not_allowed: route, insufficient_permissions: denied - route }).filter(([, n]) => n > 0));
}

function printTable(figures: Record<string, PageFigures>, before: number[], after: number[]): void {
  console.log(`\nconsole pages (ms, median and max of ${ROUNDS - 1} rounds; load average ${before.join(' ')} before, ${after.join(' ')} after)`);
  console.log('| page | navigation → data painted | (HTML, app evaluated, sign-in check) | route change → data painted | renderer CPU: navigation, route change | API calls (server time, median) |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, f] of Object.entries(figures)) {
    console.log(`| ${name} | ${f.coldMs.median} (max ${f.coldMs.max}) | ${round1(f.coldSteps.htmlMs)}, ${round1(f.coldSteps.bootMs)}, ${round1(f.coldSteps.whoamiMs)} | ${f.routeMs.median} (max ${f.routeMs.max}) | ${f.mainThreadMs.navigation}, ${f.mainThreadMs.route} | ${f.api.map((a) => `${a.path} ${a.serverMs}`).join('; ')} |`);
  }
}
