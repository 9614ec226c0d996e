import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createTenant } from '../helpers/api.ts';
import { runCli } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { certificateAuthority, makeKey } from '../helpers/certificates.ts';
import { scratchDir } from '../helpers/tools.ts';
import { firstReply } from '../helpers/ws-raw.ts';

// TLS from keygate to its upstream: `upstream.tls.ca` is what an https (and wss) upstream's certificate is
// verified against, and `upstream.tls.cert`/`key` the client certificate keygate presents to a backend that
// requires one (mutual TLS). Both doors that dial the upstream (proxied requests through undici, WebSocket dials
// through `ws`) use the same settings. The backend here is a real https server that requires a client
// certificate from the CA made here, and says which one it got; the files are checked with the configuration
// (exit 78 with the option's path), not at the first handshake.

const servers = useServers();
const dir = scratchDir('upstream-tls');
const f = (name: string) => join(dir, name);

let backend: Server;
let upstreamUrl: string;

beforeAll(async () => {
  const ca = certificateAuthority(dir, 'upstream-tls-ca');
  ca.issue('backend', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ca.issue('keygate', 'keygate-gateway', 'extendedKeyUsage=clientAuth\n');
  // A client certificate whose key is another one's: it does not load.
  makeKey(dir, 'other', 'other');

  backend = createServer({ cert: readFileSync(f('backend.crt')), key: readFileSync(f('backend.key')), ca: readFileSync(f('ca.crt')), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, clientCertificate: peer.subject?.CN ?? null }));
  });
  const wss = new WebSocketServer({ noServer: true });
  backend.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      const cn = (socket as TLSSocket).getPeerCertificate().subject?.CN ?? '';
      ws.on('message', (data) => ws.send(`${cn}: ${data.toString()}`));
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  upstreamUrl = `https://127.0.0.1:${(backend.address() as AddressInfo).port}`;
});
afterAll(async () => {
  backend?.closeAllConnections();
  await new Promise((r) => backend?.close(r));
});

async function gateway(tls: Record<string, string>) {
  const kg = await servers.keygate({ upstream: upstreamUrl, config: { upstream: { tls } } });
  const { key } = await createTenant(kg, { name: 'upstream-tls', plan: 'pro' });
  return { kg, key };
}

/** The WebSocket's first message back, or how the upgrade failed. */
const echo = (port: number, key: string): Promise<string> => firstReply(port, key, '/v1/voice/tls/stream');

describe('keygate dialling an https upstream', () => {
  it("presents its client certificate to a backend that requires one, on requests and on WebSocket dials, trusting the configured CA", async () => {
    const { kg, key } = await gateway({ ca: f('ca.crt'), cert: f('keygate.crt'), key: f('keygate.key') });
    const res = await fetch(`${kg.url}/v1/calls/1?x=1`, { headers: { 'x-api-key': key } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: '/v1/calls/1?x=1', clientCertificate: 'keygate-gateway' });
    expect(await echo(kg.port, key)).toBe('keygate-gateway: hello');
  });

  it('without a client certificate the backend refuses the connection: 502 on both doors, nothing half-done', async () => {
    const { kg, key } = await gateway({ ca: f('ca.crt') });
    const res = await fetch(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': key } });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('upstream_unavailable');
    expect(await echo(kg.port, key)).toBe('refused 502');
  });

  it("without the CA the backend's certificate is not trusted (Node's bundle alone): 502", async () => {
    const { kg, key } = await gateway({ cert: f('keygate.crt'), key: f('keygate.key') });
    const res = await fetch(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': key } });
    expect(res.status).toBe(502);
    expect(await echo(kg.port, key)).toBe('refused 502');
  });
});

describe('the TLS files are checked with the configuration', () => {
  const check = async (yaml: string) => {
    const file = f(`check-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    return runCli(['config', 'check'], { KEYGATE_CONFIG: file });
  };

  it('an unreadable file, a key that is not its certificate’s, or TLS for an http upstream: exit 78 with the path', async () => {
    const missing = await check(`upstream:\n  url: ${upstreamUrl}\n  tls:\n    ca: ${f('nope.crt')}\n`);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toMatch(/- upstream\.tls\.ca: cannot read .*nope\.crt/);

    const mismatched = await check(`upstream:\n  url: ${upstreamUrl}\n  tls:\n    cert: ${f('keygate.crt')}\n    key: ${f('other.key')}\n`);
    expect(mismatched.code).toBe(78);
    expect(mismatched.stderr).toMatch(/- upstream\.tls: the files do not load as TLS material: .*key values mismatch/);

    const lonely = await check(`upstream:\n  url: ${upstreamUrl}\n  tls:\n    cert: ${f('keygate.crt')}\n`);
    expect(lonely.code).toBe(78);
    expect(lonely.stderr).toContain('- upstream.tls: upstream.tls.cert and upstream.tls.key go together');

    const plain = await check(`upstream:\n  url: http://127.0.0.1:3000\n  tls:\n    ca: ${f('ca.crt')}\n`);
    expect(plain.code).toBe(78);
    expect(plain.stderr).toContain('- upstream.tls: needs an https upstream');

    // The listener's own files too: a missing certificate was found only when serve opened it (exit 1).
    const listener = await check(`tls:\n  cert: ${f('nope.crt')}\n  key: ${f('backend.key')}\n`);
    expect(listener.code).toBe(78);
    expect(listener.stderr).toMatch(/- tls\.cert: cannot read .*nope\.crt/);

    const good = await check(`upstream:\n  url: ${upstreamUrl}\n  tls:\n    ca: ${f('ca.crt')}\n    cert: ${f('keygate.crt')}\n    key: ${f('keygate.key')}\n`);
    expect(good.code).toBe(0);
  });

  it('serve refuses to start on them, with the same problem and 78', async () => {
    const file = f('serve-missing.yaml');
    writeFileSync(file, `upstream:\n  url: ${upstreamUrl}\n  tls:\n    ca: ${f('nope.crt')}\n`);
    const r = await runCli(['serve'], { KEYGATE_CONFIG: file, PORT: '0', OPS_PORT: '0' });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/- upstream\.tls\.ca: cannot read/);
  });
});
