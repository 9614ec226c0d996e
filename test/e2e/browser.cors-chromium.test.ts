import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { tool } from '../helpers/tools.ts';

// A real browser: Debian's Chromium, driven by playwright-core, loads a page from another origin
// than keygate's; the page calls the proxy and /keygate/v1 with fetch() and opens a WebSocket. From the
// key's allowed origin all three work; from any other origin the browser itself refuses to hand the page
// the answer (a CORS error in its console), and keygate refuses the WebSocket.

let redis: RedisServer;
let upstream: Server;
let kg: KeygateProcess;
let browser: Browser;
const pages: Server[] = [];
const upstreamSaw: string[] = [];
let allowed: string;
let foreign: string;
let key: string;

/** A web app's origin: serves one empty page. */
async function origin(): Promise<string> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>voice app</title>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  pages.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const executablePath = tool('chromium');
  redis = await startRedis();
  upstream = createServer((req, res) => {
    upstreamSaw.push(`${req.method} ${req.url}`);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ calls: [] }));
  });
  new WebSocketServer({ server: upstream }).on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${data.toString()}`)));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  kg = await startKeygate({ redisUrl: redis.url, upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
  [allowed, foreign] = [await origin(), await origin()];
  const { key: root } = await createTenant(kg, { name: 'browser' });
  const made = await self(kg, root, 'POST', '/api-keys', { name: 'web app', allowedOrigins: [allowed] });
  expect(made.status).toBe(201);
  key = made.body.key;
  // Running as root in CI: Chromium's sandbox needs a user namespace it cannot have there.
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await kg?.stop();
  upstream?.closeAllConnections();
  upstream?.close();
  for (const p of pages) p.close();
  await redis?.close();
});

interface Opened {
  page: Page;
  console: string[];
}

async function openPage(at: string): Promise<Opened> {
  const page = await browser.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(m.text()));
  await page.goto(`${at}/`);
  expect(await page.evaluate(() => (globalThis as unknown as { location: { origin: string } }).location.origin)).toBe(at);
  return { page, console };
}

type FetchResult = { ok: true; status: number; body: string; remaining: string | null; requestId: string | null } | { ok: false; error: string };

/** fetch() from the page, with the key in X-API-Key (so the browser sends a preflight first). */
const pageFetch = (page: Page, url: string, init: { method?: string; body?: string } = {}) =>
  page.evaluate(
    async ({ url, key, init }): Promise<FetchResult> => {
      try {
        const headers: Record<string, string> = { 'X-API-Key': key, ...(init.body ? { 'Content-Type': 'application/json' } : {}) };
        const r = await fetch(url, { method: init.method ?? 'GET', headers, body: init.body });
        return { ok: true, status: r.status, body: await r.text(), remaining: r.headers.get('RateLimit-Remaining'), requestId: r.headers.get('X-Request-Id') };
      } catch (err) {
        return { ok: false, error: String(err) };
      }
    },
    { url, key, init },
  );

/** A WebSocket from the page (browsers cannot set headers on one: the key travels as ?api_key=). */
const pageWebSocket = (page: Page, url: string) =>
  page.evaluate(
    (url) =>
      new Promise<{ opened: boolean; echo: string | null; closeCode: number | null }>((resolve) => {
        const ws = new WebSocket(url);
        let opened = false;
        ws.onopen = () => {
          opened = true;
          ws.send('hello');
        };
        ws.onmessage = (e) => {
          resolve({ opened, echo: String(e.data), closeCode: null });
          ws.close();
        };
        ws.onclose = (e) => resolve({ opened, echo: null, closeCode: e.code });
      }),
    url,
  );

describe('Chromium on a page from another origin', () => {
  it("calls the proxy with fetch() from the key's allowed origin and reads the answer and exposed headers", async () => {
    const { page } = await openPage(allowed);
    const r = await pageFetch(page, `${kg.url}/v1/calls/1`);
    expect(r).toMatchObject({ ok: true, status: 200, body: '{"calls":[]}' });
    if (!r.ok) return;
    expect(Number(r.remaining)).toBeGreaterThan(0); // RateLimit-* and X-Request-Id are exposed to the page
    expect(r.requestId).toBeTruthy();
    await page.close();
  });

  it('opens a WebSocket through keygate from the allowed origin', async () => {
    const { page } = await openPage(allowed);
    const ws = await pageWebSocket(page, `ws://127.0.0.1:${kg.port}/v1/voice/a1/stream?api_key=${key}`);
    expect(ws).toEqual({ opened: true, echo: 'echo:hello', closeCode: null });
    await page.close();
  });

  it("calls /keygate/v1 with fetch() from the allowed origin (preflight answered like the proxy's)", async () => {
    const { page, console } = await openPage(allowed);
    const me = await pageFetch(page, `${kg.url}/keygate/v1/tenants/me`);
    expect(me, console.join('\n')).toMatchObject({ ok: true, status: 200 });
    if (me.ok) expect(JSON.parse(me.body).tenant.name).toBe('browser');
    const created = await pageFetch(page, `${kg.url}/keygate/v1/api-keys`, { method: 'POST', body: JSON.stringify({ name: 'from the browser', permissions: ['calls:read'] }) });
    expect(created).toMatchObject({ ok: true, status: 201 });
    await page.close();
  });

  it('is blocked by the browser itself from a foreign origin: fetch() fails with a CORS error, the WebSocket is refused', async () => {
    const { page, console } = await openPage(foreign);
    const before = upstreamSaw.length;
    for (const url of [`${kg.url}/v1/calls/1`, `${kg.url}/keygate/v1/tenants/me`]) {
      const r = await pageFetch(page, url);
      expect(r, url).toEqual({ ok: false, error: 'TypeError: Failed to fetch' });
    }
    expect(console.filter((line) => line.includes('has been blocked by CORS policy'))).toHaveLength(2);
    const ws = await pageWebSocket(page, `ws://127.0.0.1:${kg.port}/v1/voice/a1/stream?api_key=${key}`);
    expect(ws.opened).toBe(false);
    expect(upstreamSaw.slice(before), 'nothing reached the upstream').toEqual([]);
    await page.close();
  });
});
