import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { admin, createTenant, proxied, self } from '../helpers/api.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { run, tool } from '../helpers/tools.ts';

// Prometheus' own linter over a full scrape, taken after traffic that touches every series: allowed and refused
// proxy requests, an upstream failure, a WebSocket session, the self-service and admin APIs.

let redis: RedisServer;
let upstream: Server;
let kg: KeygateProcess;

beforeAll(async () => {
  redis = await startRedis();
  // Echoes; `/reset` drops the connection (an upstream failure); upgrades become echoing WebSockets.
  upstream = createServer((req, res) => {
    if (req.url === '/v1/reset') return req.socket.destroy();
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  const wss = new WebSocketServer({ server: upstream });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  kg = await startKeygate({ redisUrl: redis.url, upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
});
afterAll(async () => {
  await kg?.stop();
  upstream?.closeAllConnections();
  upstream?.close();
  await redis?.close();
});

async function traffic(): Promise<void> {
  const { key } = await createTenant(kg, { name: 'scraped' });
  const limited = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'], rateLimit: { requestsPerMinute: 1 } });
  await self(kg, key, 'GET', '/api-keys');
  await self(kg, 'kg_sk_nope', 'GET', '/tenants/me');
  await admin(kg, 'GET', '/overview');
  await fetch(`${kg.opsUrl}/admin/v1/overview`, { headers: { authorization: 'Bearer wrong-token-0123456789' } });
  await fetch(`${kg.opsUrl}/admin/v1/overview`);
  for (let i = 0; i < 3; i++) await proxied(kg, '/v1/calls/1', { 'x-api-key': key });
  await proxied(kg, '/v1/calls/1');
  await proxied(kg, '/v1/calls/1', { 'x-api-key': 'kg_sk_nope' });
  for (let i = 0; i < 2; i++) await proxied(kg, '/v1/calls/1', { 'x-api-key': limited.body.key });
  await proxied(kg, '/v1/reset', { 'x-api-key': key });
  const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/a1/stream`, { headers: { 'x-api-key': key } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send('hello'));
    ws.once('message', () => ws.close());
    ws.once('close', () => resolve());
    ws.once('error', reject);
  });
}

describe('metrics exposition', () => {
  it('passes `promtool check metrics` on a full scrape after real traffic', async () => {
    const promtool = tool('promtool');
    await traffic();
    const scrape = await (await fetch(`${kg.opsUrl}/metrics`)).text();
    // Every kind of series is in this scrape, so the linter sees them all.
    for (const series of [
      'keygate_auth_decisions_total{decision="allowed",listener="public"}',
      'keygate_auth_decisions_total{decision="rate_limited",listener="public"}',
      'keygate_auth_decisions_total{decision="allowed",listener="management"}',
      'keygate_auth_decisions_total{decision="invalid_api_key",listener="management"}',
      'keygate_auth_decisions_total{decision="allowed",listener="internal"}',
      'keygate_auth_decisions_total{decision="invalid_api_key",listener="internal"}',
      'keygate_auth_decisions_total{decision="missing_api_key",listener="internal"}',
      'keygate_upstream_errors_total{kind="reset"}',
      'keygate_request_duration_seconds_bucket{le="+Inf",listener="public"}',
      'keygate_request_duration_seconds_bucket{le="+Inf",listener="internal"}',
      'keygate_websocket_connections',
      'nodejs_active_handles{type=',
      'process_cpu_user_seconds_total',
    ]) {
      expect(scrape).toContain(series);
    }
    const result = await run(promtool, ['check', 'metrics'], { input: scrape });
    expect({ code: result.code, output: result.stdout + result.stderr }).toEqual({ code: 0, output: '' });
  });
});
