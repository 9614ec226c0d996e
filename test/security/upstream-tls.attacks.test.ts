import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { createTenant } from '../helpers/api.ts';
import { cli, root, runCli } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { certificateAuthority } from '../helpers/certificates.ts';
import { scratchDir } from '../helpers/tools.ts';
import { firstReply } from '../helpers/ws-raw.ts';

// Attacks on the TLS files keygate reads for its upstream (upstream.tls.*) and its listener (tls.*), and on the
// check that reads them before serve starts: files that are not regular ones (a FIFO written once, as a shell's
// <(...) or a secrets agent hands a key over; a device that never ends), files whose contents are not what the
// option says, and what a hostname upstream's certificate is checked against. Real processes throughout: the
// built CLI, real https backends with openssl-made certificates, a real Redis.

const servers = useServers();
const dir = scratchDir('upstream-tls-attacks');
const f = (name: string) => join(dir, name);

/** The base64 lines of a PEM file: what must never appear in anything keygate prints. */
const secretLines = (file: string): string[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 40 && !l.startsWith('-----'));

interface Backend {
  server: Server;
  /** The server name (SNI) each connection asked for. */
  servernames: Array<string | false | null>;
  port: number;
}

/** An https + wss backend with `name`'s certificate that requires a client certificate from the CA. */
async function backend(name: string): Promise<Backend> {
  const servernames: Array<string | false | null> = [];
  const server = createServer({ cert: readFileSync(f(`${name}.crt`)), key: readFileSync(f(`${name}.key`)), ca: readFileSync(f('ca.crt')), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, clientCertificate: (req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? null }));
  });
  server.on('secureConnection', (s: TLSSocket) => servernames.push(s.servername));
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data) => ws.send(`echo: ${data.toString()}`)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, servernames, port: (server.address() as AddressInfo).port };
}

/** The WebSocket's first message back, or how the upgrade failed. */
const echo = (port: number, key: string): Promise<string> => firstReply(port, key, '/v1/voice/tls/stream');

const backends: Backend[] = [];
let ipBackend: Backend;
beforeAll(async () => {
  const { issue } = certificateAuthority(dir, 'attack-ca');
  issue('by-ip', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue('localhost', 'localhost', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('elsewhere', 'elsewhere.example', 'subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n');
  issue('keygate', 'keygate-gateway', 'extendedKeyUsage=clientAuth\n');
  issue('listener', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(f('not-a-key.pem'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
  ipBackend = await backend('by-ip');
  backends.push(ipBackend);
}, 60_000);
afterAll(async () => {
  for (const b of backends) {
    b.server.closeAllConnections();
    await new Promise((r) => b.server.close(r));
  }
});

/** Writers of FIFOs, killed after each test (a writer blocked opening a FIFO nobody reads would stay). */
const writers: ChildProcess[] = [];
afterEach(() => {
  for (const w of writers.splice(0)) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
});

/**
 * A FIFO at `name` that hands `first` to the first reader that opens it and `later` to every reader after that:
 * a file read twice (once by the check, once more by serve) is seen with `later` the second time.
 */
function fifo(name: string, first: string, later: string): string {
  const path = f(`${name}-${Math.random().toString(36).slice(2)}`);
  execFileSync('mkfifo', [path]);
  const script = `const fs = require('node:fs'); const [p, a, b] = process.argv.slice(1); fs.writeFileSync(p, fs.readFileSync(a)); for (;;) fs.writeFileSync(p, fs.readFileSync(b));`;
  const w = spawn(process.execPath, ['-e', script, path, first, later], { stdio: 'ignore' });
  writers.push(w);
  return path;
}

/** The CLI run once, killed after `ms` (a read that never ends must not hold the test, nor its memory, for long). */
function runBounded(args: string[], env: Record<string, string>, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [cli, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

const yamlFile = (yaml: string, at = dir): string => {
  const file = join(at, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return file;
};
const upstreamYaml = (url: string, tls: Record<string, string>) =>
  `upstream:\n  url: ${url}\n  tls:\n${Object.entries(tls).map(([k, v]) => `    ${k}: ${v}\n`).join('')}`;

describe('files that are not what the option says', () => {
  it('a CA file with no certificate in it (a private key, garbage, nothing) is refused with its path, not trusted as an empty bundle', async () => {
    writeFileSync(f('garbage.crt'), 'not a certificate\n');
    writeFileSync(f('empty.crt'), '');
    const url = `https://127.0.0.1:${ipBackend.port}`;
    for (const ca of [f('keygate.key'), f('garbage.crt'), f('empty.crt')]) {
      const r = await runCli(['config', 'check'], { KEYGATE_CONFIG: yamlFile(upstreamYaml(url, { ca })) });
      expect(r.code, `${ca}: ${r.stderr}`).toBe(78);
      expect(r.stderr).toContain(`- upstream.tls.ca: ${ca} holds no PEM certificate`);
      for (const line of secretLines(f('keygate.key'))) expect(r.stdout + r.stderr).not.toContain(line);
    }
    // The listener's client CA the same way: no client certificate would ever verify against it.
    const listener = await runCli(['config', 'check'], { KEYGATE_CONFIG: yamlFile(`tls:\n  cert: ${f('listener.crt')}\n  key: ${f('listener.key')}\n  clientCa: ${f('garbage.crt')}\n`) });
    expect(listener.code).toBe(78);
    expect(listener.stderr).toContain(`- tls.clientCa: ${f('garbage.crt')} holds no PEM certificate`);
  });

  it('a TLS file that is a device that never ends (a symlink to /dev/zero): 78 with its path at once, in config check and serve', async () => {
    const zero = f(`zero-${Math.random().toString(36).slice(2)}.crt`);
    symlinkSync('/dev/zero', zero);
    const config = yamlFile(upstreamYaml(`https://127.0.0.1:${ipBackend.port}`, { ca: zero }));
    // Unbounded, the read took 8 GB in 15 s and never ended; serve gave up after 20 s naming the wrong files.
    const check = await runBounded(['config', 'check'], { KEYGATE_CONFIG: config }, 10_000);
    expect(check.code, check.output).toBe(78);
    expect(check.output).toMatch(/- upstream\.tls\.ca: cannot read .*zero.*: more than 4194304 bytes/);
    const serve = await runBounded(['serve'], { KEYGATE_CONFIG: config, PORT: '0', OPS_PORT: '0' }, 15_000);
    expect(serve.code, serve.output).toBe(78);
    expect(serve.output).toMatch(/- upstream\.tls\.ca: cannot read .*zero.*: more than 4194304 bytes/);
  }, 40_000);

  it('a directory is refused with its path', async () => {
    mkdirSync(f('a-directory'), { recursive: true });
    const r = await runCli(['config', 'check'], { KEYGATE_CONFIG: yamlFile(upstreamYaml(`https://127.0.0.1:${ipBackend.port}`, { ca: f('a-directory') })) });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/- upstream\.tls\.ca: cannot read .*a-directory: EISDIR/);
  });
});

describe('a TLS file read once: serve uses what the check read', () => {
  // A key handed over through a FIFO is read by the check; serve, reading it again, waited for ever for a writer
  // (no listener, no log), or, with a writer still there, got other contents than the check had loaded.
  it('upstream.tls.key from a FIFO: serve starts with what the check read, and presents that certificate', async () => {
    const key = fifo('upstream-key', f('keygate.key'), f('not-a-key.pem'));
    const kg = await servers.keygate({ upstream: `https://127.0.0.1:${ipBackend.port}`, config: { upstream: { tls: { ca: f('ca.crt'), cert: f('keygate.crt'), key } } } });
    const { key: apiKey } = await createTenant(kg, { name: 'fifo-key', plan: 'pro' });
    const res = await fetch(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': apiKey } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ path: '/v1/calls/1', clientCertificate: 'keygate-gateway' });
    expect(await echo(kg.port, apiKey)).toBe('echo: hello');
  }, 30_000);

  it("the listener's tls.key from a FIFO: serve starts and answers over TLS with it", async () => {
    const key = fifo('listener-key', f('listener.key'), f('not-a-key.pem'));
    const kg = await servers.keygate({ config: { tls: { cert: f('listener.crt'), key } } });
    const status = await new Promise<number | undefined>((resolve, reject) => {
      get({ host: '127.0.0.1', port: kg.port, path: '/v1/anything', ca: readFileSync(f('ca.crt')) }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).once('error', reject);
    });
    expect(status).toBe(401);
  }, 30_000);

  it('a group (server.workers: 2): the workers use what the primary checked, also from a FIFO', async () => {
    const key = fifo('group-key', f('keygate.key'), f('not-a-key.pem'));
    const kg = await servers.keygate({
      upstream: `https://127.0.0.1:${ipBackend.port}`,
      config: { server: { workers: 2 }, upstream: { tls: { ca: f('ca.crt'), cert: f('keygate.crt'), key } } },
    });
    await expect.poll(() => kg.output().split('"msg":"keygate listening"').length - 1, { timeout: 20_000 }).toBe(2);
    const { key: apiKey } = await createTenant(kg, { name: 'group', plan: 'pro' });
    // Several connections, so that both workers are likely to answer some.
    const answers = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const res = await fetch(`${kg.url}/v1/calls/g`, { headers: { 'x-api-key': apiKey, connection: 'close' } });
        return `${res.status} ${((await res.json()) as { clientCertificate?: string }).clientCertificate}`;
      }),
    );
    expect(new Set(answers)).toEqual(new Set(['200 keygate-gateway']));
  }, 40_000);
});

describe('what the configuration check sees', () => {
  it('UPSTREAM_URL overrides the file: an http one with upstream.tls is refused, an https one over a file http is accepted', async () => {
    const tls = { ca: f('ca.crt') };
    const httpsInFile = yamlFile(upstreamYaml(`https://127.0.0.1:${ipBackend.port}`, tls));
    const toHttp = await runCli(['config', 'check'], { KEYGATE_CONFIG: httpsInFile, UPSTREAM_URL: 'http://127.0.0.1:3000' });
    expect(toHttp.code).toBe(78);
    expect(toHttp.stderr).toContain('- upstream.tls: needs an https upstream');
    const httpInFile = yamlFile(upstreamYaml('http://127.0.0.1:3000', tls));
    const toHttps = await runCli(['config', 'check'], { KEYGATE_CONFIG: httpInFile, UPSTREAM_URL: `https://127.0.0.1:${ipBackend.port}` });
    expect(toHttps.code, toHttps.stderr).toBe(0);
  });

  it("relative paths are the configuration file's directory's, whatever the working directory; the output names files, never their contents", async () => {
    const sub = f('relative');
    mkdirSync(sub, { recursive: true });
    for (const n of ['ca.crt', 'keygate.crt', 'keygate.key']) writeFileSync(join(sub, n), readFileSync(f(n)));
    const config = yamlFile(upstreamYaml(`https://127.0.0.1:${ipBackend.port}`, { ca: 'ca.crt', cert: 'keygate.crt', key: 'keygate.key' }), sub);
    const r = await runCli(['config', 'check'], { KEYGATE_CONFIG: config }, '/');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(JSON.stringify(join(sub, 'keygate.key')));
    for (const line of [...secretLines(f('keygate.key')), ...secretLines(f('keygate.crt'))]) expect(r.stdout + r.stderr).not.toContain(line);
    expect(r.stdout + r.stderr).not.toContain('BEGIN');
    // A key that is not its certificate's: the problem is named, the key is not shown.
    const mismatched = await runCli(['config', 'check'], { KEYGATE_CONFIG: yamlFile(upstreamYaml(`https://127.0.0.1:${ipBackend.port}`, { cert: f('keygate.crt'), key: f('by-ip.key') })) });
    expect(mismatched.code).toBe(78);
    for (const line of secretLines(f('by-ip.key'))) expect(mismatched.stdout + mismatched.stderr).not.toContain(line);
    expect(mismatched.stdout + mismatched.stderr).not.toContain('BEGIN');
  });
});

describe('a hostname upstream', () => {
  it('is dialled with its name as SNI and its certificate checked against that name, on both doors, with a configured CA', async () => {
    const named = await backend('localhost');
    const elsewhere = await backend('elsewhere');
    backends.push(named, elsewhere);
    const tls = { ca: f('ca.crt'), cert: f('keygate.crt'), key: f('keygate.key') };

    const kg = await servers.keygate({ upstream: `https://localhost:${named.port}`, config: { upstream: { tls } } });
    const { key } = await createTenant(kg, { name: 'sni', plan: 'pro' });
    const res = await fetch(`${kg.url}/v1/calls/sni`, { headers: { 'x-api-key': key } });
    expect(res.status).toBe(200);
    expect(await echo(kg.port, key)).toBe('echo: hello');
    expect(named.servernames.length).toBeGreaterThanOrEqual(2);
    expect(new Set(named.servernames)).toEqual(new Set(['localhost']));

    // Signed by the trusted CA, for another name: refused on both doors, as an untrusted certificate is.
    const wrong = await servers.keygate({ upstream: `https://localhost:${elsewhere.port}`, config: { upstream: { tls } } });
    const { key: key2 } = await createTenant(wrong, { name: 'wrong-name', plan: 'pro' });
    const refused = await fetch(`${wrong.url}/v1/calls/sni`, { headers: { 'x-api-key': key2 } });
    expect(refused.status).toBe(502);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('upstream_unavailable');
    expect(await echo(wrong.port, key2)).toBe('refused 502');
    for (const line of secretLines(f('keygate.key'))) expect(kg.output() + wrong.output()).not.toContain(line);
  }, 40_000);
});
