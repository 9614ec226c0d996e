import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { FAST_WEBHOOKS as FAST, until, useReceivers } from '../helpers/webhooks.ts';

// Attacks on webhook delivery against real processes: a keygate on a real Redis, receivers that are real
// sockets on 127.0.0.1 (HTTP servers, and raw TCP ones that answer the way no honest server does). A target URL is
// the attacker's choice: it must not reach what keygate must not reach, hold keygate's resources past the
// configured bounds, nor read a secret back.

const servers = useServers();
const startReceiver = useReceivers();

let prefixes = 0;
const isolated = (config: Record<string, unknown>) => ({ ...config, redis: { keyPrefix: `wha${++prefixes}:` } });

/** Raw TCP receivers, each socket handed to `onSocket`; every socket is destroyed after the file's tests. */
const raw: Array<{ server: Server; sockets: Set<Socket> }> = [];
afterAll(async () => {
  for (const r of raw) for (const s of r.sockets) s.destroy();
  await Promise.all(raw.map((r) => new Promise((done) => r.server.close(done))));
});
interface RawReceiver {
  port: number;
  url: string;
  /** Per connection: when it was opened and closed (by either side), and how many bytes the receiver wrote on it. */
  conns: Array<{ opened: number; closed: number | null; written: number }>;
}
async function rawReceiver(onSocket: (s: Socket, track: (bytes: number) => void) => void): Promise<RawReceiver> {
  const sockets = new Set<Socket>();
  const rec: RawReceiver = { port: 0, url: '', conns: [] };
  const server = createTcpServer((s) => {
    sockets.add(s);
    const conn = { opened: Date.now(), closed: null as number | null, written: 0 };
    rec.conns.push(conn);
    s.on('error', () => {});
    s.on('close', () => {
      conn.closed = Date.now();
      sockets.delete(s);
    });
    onSocket(s, (n) => (conn.written += n));
  });
  raw.push({ server, sockets });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  rec.port = (server.address() as AddressInfo).port;
  rec.url = `http://127.0.0.1:${rec.port}/hooks`;
  return rec;
}

/** Once the request's head and body are in, `then` answers (a webhook body is small: one read holds it). */
const afterRequest = (s: Socket, then: () => void) => {
  let buf = '';
  const onData = (c: Buffer) => {
    buf += c.toString('latin1');
    if (buf.includes('\r\n\r\n')) {
      s.off('data', onData);
      then();
    }
  };
  s.on('data', onData);
};

/** Writes `chunk` every `everyMs` until the socket closes. */
const drip = (s: Socket, chunk: string | Buffer, everyMs: number, track: (n: number) => void) => {
  const t = setInterval(() => {
    if (s.destroyed) return clearInterval(t);
    s.write(chunk);
    track(Buffer.byteLength(chunk));
  }, everyMs);
  s.on('close', () => clearInterval(t));
};

const deliveries = async (kg: KeygateProcess, id: string) => (await admin(kg, 'GET', `/webhooks/${id}/deliveries`)).body.data as Array<{ status: number | null; error: string | null; latencyMs: number; outcome: string; ok: boolean }>;
const firstAttempt = (kg: KeygateProcess, id: string, timeoutMs = 20_000) => until(`an attempt on ${id}`, async () => (await deliveries(kg, id)).at(-1), timeoutMs);

describe('webhook targets: SSRF (allowPrivateTargets false)', () => {
  it('refuses loopback, private, link-local, metadata and special-purpose addresses in every spelling, and those embedded in IPv6 (NAT64, 6to4)', async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: { ...FAST, allowPrivateTargets: false } }) });
    const rec = await startReceiver();
    const port = new URL(rec.url).port;
    const hosts = [
      '2130706433', '0177.0.0.1', '0x7f000001', '0x7f.1', '127.1', '0.0.0.0', '0', 'localhost', 'localhost.', 'LOCALHOST',
      '[::]', '[::1]', '[0:0:0:0:0:0:0:1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[::ffff:0:7f00:1]', '[::127.0.0.1]',
      // NAT64 (well-known and local-use prefixes) and 6to4 carry an IPv4 address: a NAT64 gateway or a 6to4 relay
      // connects to it, so 64:ff9b::10.0.0.1 is 10.0.0.1 wherever IPv6-only nodes reach IPv4 through NAT64.
      '[64:ff9b::7f00:1]', '[64:ff9b::a9fe:a9fe]', '[64:ff9b::a00:1]', '[64:ff9b:1::a9fe:a9fe]', '[2002:7f00:1::1]', '[2002:a9fe:a9fe::1]', '[2002:c0a8:101::1]',
      // Teredo, site-local, discard-only, documentation; benchmarking and reserved IPv4.
      '[2001:0:4136:e378:8000:63bf:80ff:fffe]', '[fec0::1]', '[100::1]', '[2001:db8::1]', '198.18.0.1', '192.0.0.8', '240.0.0.1', '255.255.255.255',
      '169.254.169.254', '[fd00::1]', '[fe80::1]', '[fd00:ec2::254]', '100.100.100.200', '10.0.0.1', '172.16.0.1', '192.168.1.1',
      'user:pass@127.0.0.1',
    ];
    const made: Array<{ host: string; id: string }> = [];
    for (const host of hosts) {
      const r = await admin(kg, 'POST', '/webhooks', { url: `http://${host}:${port}/hooks`, events: ['key.created'] });
      // A URL with credentials may be refused outright; anything else is accepted and refused at delivery.
      if (r.status === 400) {
        expect(host).toContain('@');
        expect(r.body.error.code).toBe('validation_error');
        continue;
      }
      expect(r.status, host).toBe(201);
      made.push({ host, id: r.body.id });
    }
    await createTenant(kg, { name: 'ssrf' });
    const got: Record<string, string | null> = {};
    for (const { host, id } of made) got[host] = (await firstAttempt(kg, id)).error;
    // A name the resolver does not know (`localhost.` on some machines) is never connected to either.
    const notBlocked = Object.entries(got).filter(([host, error]) => error !== 'blocked: the address is not allowed' && !(host === 'localhost.' && error?.startsWith('unresolved: ')));
    expect(notBlocked).toEqual([]);
    expect(rec.got).toEqual([]);
  }, 90_000);

  it('does not follow a redirect, to a private address or anywhere (holds)', async () => {
    // Private targets are allowed here so the first receiver (on 127.0.0.1) is reached at all: what is attacked is
    // the redirect, which a client following it would take to the second receiver.
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST }) });
    const inside = await startReceiver();
    const redirector = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(307, { location: inside.url }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', () => r()));
    try {
      const r = await admin(kg, 'POST', '/webhooks', { url: `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/`, events: ['key.created'] });
      await createTenant(kg, { name: 'redirected' });
      const first = await firstAttempt(kg, r.body.id);
      expect(first).toMatchObject({ status: 307, ok: false, outcome: 'retry', error: null });
      await new Promise((done) => setTimeout(done, 500));
      expect(inside.got).toEqual([]);
    } finally {
      redirector.closeAllConnections();
      await new Promise((done) => redirector.close(done));
    }
  }, 60_000);
});

describe('webhook receivers that hold keygate: every wait is bounded by timeoutMs, every read by maxResponseBytes', () => {
  const TIMEOUT = FAST.timeoutMs;
  const SLACK_MS = 5_000;
  const config = () => isolated({ webhooks: { ...FAST, maxResponseBytes: 65_536 } });

  it('a body dribbled a byte at a time, a chunked body that never ends, headers dribbled, 1xx forever, a huge header, an endless fast body, a stalled TLS handshake', async () => {
    const kg = await servers.keygate({ config: config() });
    const receivers: Record<string, RawReceiver> = {
      slowBody: await rawReceiver((s, track) => afterRequest(s, () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n');
        drip(s, 'x', 100, track);
      })),
      endlessChunked: await rawReceiver((s, track) => afterRequest(s, () => {
        s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
        drip(s, '1\r\nx\r\n', 100, track);
      })),
      slowHeaders: await rawReceiver((s, track) => afterRequest(s, () => {
        s.write('HTTP/1.1 200 OK\r\n');
        drip(s, 'x-a: b\r\n', 100, track);
      })),
      informational: await rawReceiver((s, track) => afterRequest(s, () => drip(s, 'HTTP/1.1 102 Processing\r\n\r\n', 100, track))),
      hugeHeader: await rawReceiver((s, track) => afterRequest(s, () => {
        const head = `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(4 << 20)}\r\ncontent-length: 0\r\n\r\n`;
        s.write(head);
        track(head.length);
      })),
      tenGigabytes: await rawReceiver((s, track) => afterRequest(s, () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 10737418240\r\n\r\n');
        const block = Buffer.alloc(64 * 1024, 'x');
        const pump = () => {
          while (!s.destroyed && s.write(block)) track(block.length);
        };
        s.on('drain', pump);
        pump();
      })),
      // Accepts the connection, reads (so it sees keygate close it) and says nothing: a TLS client waits for the
      // ServerHello.
      stalledTls: await rawReceiver((s) => s.resume()),
    };
    const ids: Record<string, string> = {};
    for (const [name, rec] of Object.entries(receivers)) {
      const url = name === 'stalledTls' ? `https://127.0.0.1:${rec.port}/hooks` : rec.url;
      const r = await admin(kg, 'POST', '/webhooks', { url, events: ['key.created'] });
      expect(r.status).toBe(201);
      ids[name] = r.body.id;
    }
    await createTenant(kg, { name: 'held' });
    for (const [name, id] of Object.entries(ids)) {
      const a = await firstAttempt(kg, id);
      // The attempt ends, failed: all but the endless body, whose 200 came before the read stopped at
      // maxResponseBytes. Bounded is what is asserted, not how precisely: every receiver here drips until keygate
      // closes, so an unbounded wait never ends, while a loaded machine fires the bound's timer late (1.9 s for
      // 1 s was seen with a test suite running beside it).
      expect(a.ok, name).toBe(name === 'tenGigabytes');
      expect(a.latencyMs, name).toBeLessThan(TIMEOUT + SLACK_MS);
      // And keygate has closed the connection: nothing of it stays open on keygate's side.
      const conn = receivers[name]!.conns[0]!;
      await until(`${name}: its first connection closed`, () => conn.closed !== null, TIMEOUT + SLACK_MS);
      expect(conn.closed! - conn.opened, name).toBeLessThan(TIMEOUT + SLACK_MS);
    }
    // The endless body was read no further than maxResponseBytes plus what the socket buffers hold.
    expect(receivers.tenGigabytes!.conns[0]!.written).toBeLessThan(16 << 20);
  }, 90_000);
});

describe('webhook secrets and endpoint changes mid-retry', () => {
  it("never reads an endpoint's secret back after its creation or rotation: answers, delivery log, dead letters, audit logs, webhook.disabled, process output (holds)", async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: { ...FAST, retryForHours: 0.0005 } }) });
    const watcher = await startReceiver();
    const watched = await admin(kg, 'POST', '/webhooks', { url: watcher.url, events: ['webhook.disabled'] });
    const down = await startReceiver(() => 503);
    const { tenant, key } = await createTenant(kg, { name: 'secretive', plan: 'pro' });
    const made = await self(kg, key, 'POST', '/webhooks', { url: down.url, events: ['key.created'] });
    expect(made.status).toBe(201);
    await self(kg, key, 'POST', '/api-keys', { name: 'one' });
    await until('a failed attempt', () => down.got.length >= 1);
    const rotated = await self(kg, key, 'POST', `/webhooks/${made.body.id}/rotate-secret`, { gracePeriodSeconds: 60 });
    expect(rotated.status).toBe(200);
    const platformRotated = await admin(kg, 'POST', `/webhooks/${watched.body.id}/rotate-secret`, { gracePeriodSeconds: 0 });
    expect(platformRotated.status).toBe(200);
    await until('the endpoint disabled', async () => (await self(kg, key, 'GET', `/webhooks/${made.body.id}`)).body.disabledAt);
    await until('webhook.disabled told', () => watcher.got.some((g) => g.type === 'webhook.disabled'));
    const secrets = [made.body.secret, rotated.body.secret, watched.body.secret, platformRotated.body.secret] as string[];
    expect(new Set(secrets).size).toBe(4);
    const read = [
      await self(kg, key, 'GET', '/webhooks'),
      await self(kg, key, 'GET', `/webhooks/${made.body.id}`),
      await self(kg, key, 'GET', `/webhooks/${made.body.id}/deliveries`),
      await self(kg, key, 'GET', '/webhooks/dead-letters'),
      await self(kg, key, 'GET', '/audit-log'),
      await self(kg, key, 'POST', `/webhooks/${made.body.id}/enable`),
      await admin(kg, 'GET', '/webhooks'),
      await admin(kg, 'GET', `/webhooks/${watched.body.id}`),
      await admin(kg, 'GET', `/webhooks/${watched.body.id}/deliveries`),
      await admin(kg, 'GET', `/tenants/${tenant.id}/audit-log`),
      await admin(kg, 'GET', '/audit-log'),
    ];
    for (const r of read) expect(r.status).toBe(200);
    const seen = JSON.stringify(read.map((r) => r.body)) + JSON.stringify(watcher.got) + JSON.stringify(down.got) + kg.output();
    for (const s of secrets) {
      expect(seen).not.toContain(s);
      expect(seen).not.toContain(s.slice('whsec_'.length));
    }
    // The audit log did record the rotations (what was scanned is what an owner reads).
    expect(JSON.stringify(read[4]!.body)).toContain('webhook.secret_rotated');
  }, 60_000);

  it('refuses a URL with credentials (undici would drop them unsent, while the URL went to audit logs and webhook.disabled)', async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST }) });
    const rec = await startReceiver();
    const { key } = await createTenant(kg, { name: 'creds', plan: 'pro' });
    for (const url of [rec.url.replace('http://', 'http://user:s3cr3t@'), rec.url.replace('http://', 'http://user@'), rec.url.replace('http://', 'http://:s3cr3t@')]) {
      const r = await self(kg, key, 'POST', '/webhooks', { url });
      expect(r.status, url).toBe(400);
      expect(r.body.error.code).toBe('validation_error');
      expect(JSON.stringify(r.body)).not.toContain('s3cr3t');
    }
  }, 30_000);

  it('signs a retry after a rotation with the secrets valid then (the old one no more once its grace is over), and stops retrying a deleted endpoint (holds)', async () => {
    const kg = await servers.keygate({ config: isolated({ webhooks: FAST }) });
    let up = false;
    const rec = await startReceiver(() => (up ? 204 : 503));
    const gone = await startReceiver(() => 503);
    const ep = await admin(kg, 'POST', '/webhooks', { url: rec.url, events: ['key.created'] });
    const doomed = await admin(kg, 'POST', '/webhooks', { url: gone.url, events: ['key.created'] });
    rec.secrets.push(ep.body.secret);
    await createTenant(kg, { name: 'rotating' });
    await until('failed attempts on both', () => rec.got.length >= 1 && gone.got.length >= 1);
    expect(rec.got[0]!.verifiedWith).toEqual([ep.body.secret]);
    const rotated = await admin(kg, 'POST', `/webhooks/${ep.body.id}/rotate-secret`, { gracePeriodSeconds: 0 });
    rec.secrets.push(rotated.body.secret);
    expect((await admin(kg, 'DELETE', `/webhooks/${doomed.body.id}`)).status).toBe(204);
    // The poll after the rotation and the deletion sees both (a retry already started may carry the old state).
    await new Promise((r) => setTimeout(r, FAST.pollIntervalMs * 4 + FAST.timeoutMs));
    const goneBefore = gone.got.length;
    const from = rec.got.length;
    up = true;
    await until('the retry delivered', () => rec.delivered.size === 1);
    expect(rec.got.slice(from).every((g) => g.verifiedWith.length === 1 && g.verifiedWith[0] === rotated.body.secret)).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(gone.got.length).toBe(goneBefore);
    expect((await admin(kg, 'GET', '/webhooks/dead-letters')).body.data.filter((d: { endpointId: string }) => d.endpointId === doomed.body.id)).toEqual([]);
  }, 60_000);
});
