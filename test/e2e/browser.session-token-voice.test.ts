import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createTenant, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { tool } from '../helpers/tools.ts';

// A voice client in a real browser that never holds a key: Debian's Chromium loads a page from the web app's
// origin; the app's backend (the same origin) mints a session token with its private key and hands it to the
// page; the page opens a WebSocket through keygate with the `keygate.token` subprotocol pair and streams 20 ms
// audio frames both ways. A replay opens nothing, an expired token opens nothing, and revoking the backend's key
// closes the live session.

let redis: RedisServer;
let upstream: Server;
let kg: KeygateProcess;
let app: Server;
let appOrigin: string;
let browser: Browser;
let backendKey: string;
let backendKeyId: string;
let rootKey: string;

beforeAll(async () => {
  const executablePath = tool('chromium');
  redis = await startRedis();
  // The voice backend: echoes every frame.
  upstream = createServer((_req, res) => res.end());
  new WebSocketServer({ server: upstream }).on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  kg = await startKeygate({
    redisUrl: redis.url,
    upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    env: { KEYGATE_TOKEN_SIGNING_KEYS: 'browser:a-token-signing-secret-of-32-chars-or-more' },
    config: { websocket: { revalidateSeconds: 1 } },
  });
  const root = await createTenant(kg, { name: 'voice app', plan: 'pro' });
  rootKey = root.key;
  const made = await self(kg, rootKey, 'POST', '/api-keys', { name: 'web backend', permissions: ['session-tokens:write', 'voice:connect'] });
  backendKey = made.body.key;
  backendKeyId = made.body.id;

  // The web app: its page, and its backend route that mints a token for the page (the key stays here).
  app = createServer(async (req, res) => {
    if (req.url?.startsWith('/token')) {
      const ttl = Number(new URL(req.url, 'http://x').searchParams.get('ttl') ?? 60);
      const minted = await self(kg, backendKey, 'POST', '/session-tokens', { ttlSeconds: ttl, assistantId: 'asst_1', allowedOrigins: [appOrigin], permissions: ['voice:connect'] });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(minted.body));
      return;
    }
    res.setHeader('content-type', 'text/html');
    res.end('<!doctype html><title>voice client</title>');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  // Running as root in CI: Chromium's sandbox needs a user namespace it cannot have there.
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await kg?.stop();
  for (const s of [upstream, app]) {
    s?.closeAllConnections();
    s?.close();
  }
  await redis?.close();
});

async function page(): Promise<Page> {
  const p = await browser.newPage();
  await p.goto(`${appOrigin}/`);
  return p;
}

/** In the page: fetch a token from the app's backend. */
const fetchToken = (p: Page, ttl = 60) => p.evaluate(async (ttl) => ((await (await fetch(`/token?ttl=${ttl}`)).json()) as { token: string; expiresAt: string }), ttl);

interface Streamed {
  opened: boolean;
  protocol: string;
  sent: number;
  echoed: number;
  echoedBytes: number;
  closeCode: number | null;
}

/**
 * In the page: opens a WebSocket with the token as the `keygate.token` subprotocol pair and sends `frames` audio
 * frames (320 bytes: 20 ms of 8 kHz μ-law) every 20 ms, counting the echoes; resolves once all are echoed or the
 * socket closes. With `hold`, the socket stays open afterwards and its close code is kept in `window.voiceClosed`.
 */
const stream = (p: Page, url: string, token: string, frames: number, hold = false) =>
  p.evaluate(
    ({ url, token, frames, hold }) =>
      new Promise<Streamed>((resolve) => {
        const ws = new WebSocket(url, ['keygate.token', token]);
        ws.binaryType = 'arraybuffer';
        const r: Streamed = { opened: false, protocol: '', sent: 0, echoed: 0, echoedBytes: 0, closeCode: null };
        (globalThis as unknown as { voiceClosed: Promise<number> }).voiceClosed = new Promise((c) => ws.addEventListener('close', (e) => c(e.code)));
        ws.onopen = () => {
          r.opened = true;
          r.protocol = ws.protocol;
          const frame = new Uint8Array(320).fill(0xff);
          const timer = setInterval(() => {
            if (r.sent === frames) return clearInterval(timer);
            ws.send(frame);
            r.sent++;
          }, 20);
        };
        ws.onmessage = (e) => {
          r.echoed++;
          r.echoedBytes += (e.data as ArrayBuffer).byteLength;
          if (r.echoed === frames) {
            if (!hold) ws.close();
            resolve(r);
          }
        };
        ws.onclose = (e) => {
          r.closeCode = e.code;
          resolve(r);
        };
      }),
    { url, token, frames, hold },
  );

describe('a browser voice client with a session token', () => {
  it('streams audio both ways with a token from its backend; a replay opens nothing', async () => {
    const p = await page();
    const { token } = await fetchToken(p);
    expect(token).toMatch(/^kg_st_/);
    const url = `ws://127.0.0.1:${kg.port}/v1/voice/asst_1/stream`;
    const first = await stream(p, url, token, 50);
    expect(first).toMatchObject({ opened: true, protocol: 'keygate.token', sent: 50, echoed: 50, echoedBytes: 50 * 320 });
    const replay = await stream(p, url, token, 1);
    expect(replay.opened).toBe(false);
    await p.close();
  });

  it('opens nothing once the token has expired', async () => {
    const p = await page();
    const { token, expiresAt } = await fetchToken(p, 10);
    await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 1_100));
    const late = await stream(p, `ws://127.0.0.1:${kg.port}/v1/voice/asst_1/stream`, token, 1);
    expect(late.opened).toBe(false);
    await p.close();
  }, 30_000);

  it("closes the live session within 2 s when the backend's key is revoked", async () => {
    const p = await page();
    const { token } = await fetchToken(p);
    const live = await stream(p, `ws://127.0.0.1:${kg.port}/v1/voice/asst_1/stream`, token, 5, true);
    expect(live).toMatchObject({ opened: true, echoed: 5 });
    const revokedAt = Date.now();
    expect((await self(kg, rootKey, 'DELETE', `/api-keys/${backendKeyId}`)).status).toBe(204);
    const code = await p.evaluate(() => (globalThis as unknown as { voiceClosed: Promise<number> }).voiceClosed);
    expect(code).toBe(1008);
    expect(Date.now() - revokedAt).toBeLessThan(2_000);
    await p.close();
  });
});
