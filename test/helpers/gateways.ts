import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { root, startKeygate, type KeygateOptions, type KeygateProcess } from './keygate.ts';
import { freePort } from './ports.ts';
import type { Servers } from './servers.ts';

// Real gateways in front of a test upstream, with keygate as their authorizer. Each runs the
// configuration from docs/gateways/ as it stands, with only the three documented addresses replaced (keygate's
// authorizer 127.0.0.1:8081, the upstream 127.0.0.1:3000, the gateway's port 8000): the docs are what is tested.

export const DOCS = join(root, 'docs', 'gateways');

export interface AuthzKeygate extends KeygateProcess {
  authzPort: number;
  authzUrl: string;
}

/** A keygate with its authorizer listener on a free port, trusting checks from loopback. */
export async function startAuthzKeygate(opts: KeygateOptions & { authz?: Record<string, unknown>; server?: Record<string, unknown> }): Promise<AuthzKeygate> {
  const { authz, server, config, ...rest } = opts;
  const kg = await startKeygate({
    ...rest,
    config: {
      ...config,
      server: { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1', authzPort: 0, authzHost: '127.0.0.1', ...server },
      authz: { trustedGateways: ['127.0.0.1/32', '::1/128'], ...authz },
    },
  });
  const m = /"authzPort":(\d+)/.exec(kg.output());
  if (!m) throw new Error(`keygate did not report its authorizer port:\n${kg.output()}`);
  const authzPort = Number(m[1]);
  return Object.assign(kg, { authzPort, authzUrl: `http://127.0.0.1:${authzPort}` });
}

export interface Gateway {
  url: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** A docs configuration with its three addresses replaced. */
export function docsConfig(file: string, ports: { authz: number; upstream: number; listen: number }): string {
  const text = readFileSync(join(DOCS, file), 'utf8');
  for (const needle of ['127.0.0.1:8081', '127.0.0.1:3000', '8000']) if (!text.includes(needle)) throw new Error(`${file} no longer mentions ${needle}`);
  return text
    .replaceAll('127.0.0.1:8081', `127.0.0.1:${ports.authz}`)
    .replaceAll('127.0.0.1:3000', `127.0.0.1:${ports.upstream}`)
    .replace(/^(\s*listen\s+)8000;/m, `$1127.0.0.1:${ports.listen};`)
    .replace(/^:8000 \{/m, `:${ports.listen} {`);
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

async function accepting(port: number, proc: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`gateway exited with ${proc.exitCode}:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gateway not listening on ${port}:\n${output()}`);
}

function run(cmd: string, args: string[], env: Record<string, string>, cwd: string): { proc: ChildProcess; output: () => string } {
  const proc = spawn(cmd, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  proc.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  return { proc, output: () => out };
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      proc.once('exit', () => (clearTimeout(timer), resolve()));
      proc.kill('SIGTERM');
    });
}

/** nginx (one worker, in the foreground) with docs/gateways/nginx.conf included in its http {} block. */
export async function startNginx(ports: { authz: number; upstream: number }): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-nginx-'));
  for (const d of ['logs', 'tmp']) mkdirSync(join(dir, d));
  const listen = await freePort();
  writeFileSync(join(dir, 'keygate.conf'), docsConfig('nginx.conf', { ...ports, listen }));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  include ${dir}/keygate.conf;
}
`,
  );
  const { proc, output } = run('nginx', ['-p', dir, '-c', conf], {}, dir);
  await accepting(listen, proc, output);
  return { url: `http://127.0.0.1:${listen}`, proc, output, stop: stopper(proc) };
}

/** Caddy (`caddy run`, admin endpoint off) with docs/gateways/Caddyfile. */
export async function startCaddy(ports: { authz: number; upstream: number }): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-caddy-'));
  const listen = await freePort();
  const file = join(dir, 'Caddyfile');
  // Global options for a test run: no admin endpoint (several Caddies may run at once).
  writeFileSync(file, `{\n\tadmin off\n}\n\n${docsConfig('Caddyfile', { ...ports, listen })}`);
  const { proc, output } = run('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir }, dir);
  await accepting(listen, proc, output);
  return { url: `http://127.0.0.1:${listen}`, proc, output, stop: stopper(proc) };
}

export interface CheckReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body as JSON, or null. */
  json: any;
}

/** One request to keygate's authorizer as a gateway sends it: the path, method and headers exactly as given. */
export function check(authzUrl: string, opts: { method?: string; path: string; headers?: Record<string, string | string[]>; body?: string | Buffer; localAddress?: string }): Promise<CheckReply> {
  const { hostname, port } = new URL(authzUrl);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path: opts.path, method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown = null;
        try {
          json = body ? JSON.parse(body) : null;
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface GatewayPair {
  /** A keygate authorizer, and the gateway in front of it. */
  kg: AuthzKeygate;
  gateway: Gateway;
  /** The same with `upstream.signingSecret` set, for the signature checks. */
  signing: AuthzKeygate;
  signingGateway: Gateway;
}

/**
 * Two keygate authorizers on a test file's Redis and upstream (one signing with `secret`), each behind a gateway
 * `start`ed with the docs' configuration; set before the file's tests, stopped after them (gateways first).
 */
export function useGateways(servers: Servers, start: (ports: { authz: number; upstream: number }) => Promise<Gateway>, secret: string): GatewayPair {
  const pair = {} as GatewayPair;
  const env = { KEYGATE_POLICY: join(root, 'test/fixtures/policy.yaml') };
  beforeAll(async () => {
    [pair.kg, pair.signing] = await Promise.all([
      startAuthzKeygate({ redisUrl: servers.redis.url, upstream: servers.upstream.url, env }),
      startAuthzKeygate({ redisUrl: servers.redis.url, upstream: servers.upstream.url, env: { ...env, KEYGATE_SIGNING_SECRET: secret } }),
    ]);
    [pair.gateway, pair.signingGateway] = await Promise.all([
      start({ authz: pair.kg.authzPort, upstream: servers.upstream.port }),
      start({ authz: pair.signing.authzPort, upstream: servers.upstream.port }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([pair.gateway?.stop(), pair.signingGateway?.stop()]);
    await Promise.all([pair.kg?.stop(), pair.signing?.stop()]);
  });
  return pair;
}
