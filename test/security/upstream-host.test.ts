import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTenant } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { startUpgradeUpstream, type Upstream } from '../helpers/upstream.ts';

// The Host an upstream receives is not the client's to choose: an upstream that routes by host name (an ingress, a
// virtual host) would otherwise hand a client's authorised, signed request to whichever site it named, where
// keygate decided on the path alone. Both doors that reach the upstream (a proxied request and a WebSocket dial)
// send upstream.url's own host, as Kong, Tyk and nginx do, the client's going in X-Forwarded-Host;
// `upstream.preserveHost: true` passes the client's on, on both doors alike.

const servers = useServers();
let upstream: Upstream & { upgrades: IncomingHttpHeaders[] };

beforeAll(async () => {
  upstream = await startUpgradeUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

/** A proxied request and a WebSocket upgrade with the client's own Host; what the upstream saw of each. */
async function bothDoors(kg: KeygateProcess, key: string, host: string): Promise<{ http: IncomingHttpHeaders; websocket: IncomingHttpHeaders }> {
  const before = upstream.seen.length;
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: kg.port, path: '/v1/calls/1', headers: { host, 'x-api-key': key } }, (res) => {
      expect(res.statusCode).toBe(200);
      res.resume().on('end', resolve);
    });
    req.on('error', reject).end();
  });
  const seenUpgrades = upstream.upgrades.length;
  const ws = new WebSocket(`ws://127.0.0.1:${kg.port}/v1/voice/host/stream`, { headers: { host, 'x-api-key': key } });
  await new Promise((resolve, reject) => ws.once('close', resolve).once('error', reject));
  expect(upstream.upgrades.length).toBe(seenUpgrades + 1);
  return { http: upstream.seen[before]!.headers, websocket: upstream.upgrades.at(-1)! };
}

describe('the Host the upstream receives', () => {
  it("is the upstream's own on both doors; the client's is in X-Forwarded-Host", async () => {
    const kg = await servers.keygate({ upstream: upstream.url });
    const { key } = await createTenant(kg, { name: 'host-default', plan: 'pro' });
    const seen = await bothDoors(kg, key, 'internal-admin.local');
    for (const door of [seen.http, seen.websocket]) {
      expect({ host: door.host, forwarded: door['x-forwarded-host'] }).toEqual({ host: `127.0.0.1:${upstream.port}`, forwarded: 'internal-admin.local' });
    }
  });

  it("is the client's on both doors with upstream.preserveHost", async () => {
    const kg = await servers.keygate({ upstream: upstream.url, config: { upstream: { preserveHost: true } } });
    const { key } = await createTenant(kg, { name: 'host-preserved', plan: 'pro' });
    const seen = await bothDoors(kg, key, 'voice.example.com');
    for (const door of [seen.http, seen.websocket]) {
      expect({ host: door.host, forwarded: door['x-forwarded-host'] }).toEqual({ host: 'voice.example.com', forwarded: 'voice.example.com' });
    }
  });
});
