import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, startKeygate, runCli } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';


const keygate = runCli;

const servers = useServers();

describe('listen addresses', () => {
  it('binds the internal listener (admin API) to loopback by default; OPS_HOST and AUTHZ_HOST set the others', async () => {
    const defaults = JSON.parse((await keygate(['config', 'check'])).stdout);
    expect(defaults.server.opsHost).toBe('127.0.0.1');
    const set = await keygate(['config', 'check'], { OPS_HOST: '0.0.0.0', AUTHZ_HOST: '::1', HOST: '127.0.0.2' });
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout).server).toMatchObject({ opsHost: '0.0.0.0', authzHost: '::1', host: '127.0.0.2' });
  });
});

describe('file paths in the configuration', () => {
  it('are resolved against the directory of the file that names them, wherever keygate starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-paths-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc', 'routes.yaml'), 'defaultAction: deny\nroutes:\n  - {method: GET, path: /v1/ok, permission: "*"}\n');
    writeFileSync(join(dir, 'etc', 'keygate.yaml'), 'policy:\n  file: routes.yaml\n');
    const elsewhere = mkdtempSync(join(tmpdir(), 'kg-cwd-'));
    const r = await keygate(['config', 'check'], { KEYGATE_CONFIG: join(dir, 'etc', 'keygate.yaml') }, elsewhere);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).policy.file).toBe(join(dir, 'etc', 'routes.yaml'));
    // The shipped default policy is found from any working directory too.
    const plain = await keygate(['config', 'check'], {}, elsewhere);
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout).policy.file).toBe(join(root, 'config', 'policy.yaml'));
    // From the environment: the working directory, as a shell user expects.
    const fromEnv = await keygate(['config', 'check'], { KEYGATE_POLICY: 'etc/routes.yaml' }, dir);
    expect(JSON.parse(fromEnv.stdout).policy.file).toBe(join(dir, 'etc', 'routes.yaml'));

    // serve started outside the repository with that file: the policy is the one next to the file.
    const kg = await startKeygate({ upstream: servers.upstream.url, config: { policy: { file: join(dir, 'etc', 'routes.yaml') } } });
    try {
      expect(kg.output()).not.toContain('ENOENT');
    } finally {
      await kg.stop();
    }
  });
});

describe('config check', () => {
  it('reports every problem in one run: schema, plans, TLS pairs and the route policy together', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-all-'));
    writeFileSync(join(dir, 'policy.yaml'), 'defaultAction: maybe\n');
    writeFileSync(
      join(dir, 'keygate.yaml'),
      [
        'server:',
        '  port: "eighty"',
        'cache:',
        '  ttlSeconds: -1',
        'plans:',
        '  free:',
        '    maxKeys: 3',
        '    requestsPerMinute: {default: 900, max: 600}',
        '    requestsPerDay: {default: 10, max: 100}',
        '    maxConcurrentConnections: {default: 2, max: "ten"}',
        'tls:',
        '  cert: /nonexistent/cert.pem',
        'policy:',
        '  file: policy.yaml',
        '',
      ].join('\n'),
    );
    const r = await keygate(['config', 'check'], { KEYGATE_CONFIG: join(dir, 'keygate.yaml') });
    expect(r.code).toBe(78);
    for (const path of ['server.port', 'cache.ttlSeconds', 'plans.free.maxConcurrentConnections.max', 'plans.free.requestsPerMinute.default', 'tls', `policy(${join(dir, 'policy.yaml')}).defaultAction`]) {
      expect(r.stderr).toContain(`- ${path}:`);
    }
  });
});

describe('configuration files are bounded', () => {
  it('refuses a route policy file over 4 MiB with 78 before reading it, in config check and in serve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-huge-'));
    // A YAML comment, so that only the size can be what is refused.
    writeFileSync(join(dir, 'policy.yaml'), `# ${'x'.repeat(4 * 1024 * 1024)}\ndefaultAction: deny\n`);
    for (const args of [['config', 'check'], ['serve']]) {
      const r = await keygate(args, { KEYGATE_POLICY: join(dir, 'policy.yaml'), PORT: '0', OPS_PORT: '0' });
      expect({ args, code: r.code }).toEqual({ args, code: 78 });
      expect(r.stderr).toContain(`- policy.file: ${join(dir, 'policy.yaml')}: ${statSync(join(dir, 'policy.yaml')).size} bytes; at most 4194304 are read`);
    }
  });
});

describe('start-up and shutdown', () => {
  it('refuses a Node older than it supports in one line, before loading anything else', async () => {
    // Node 20 as the CLI sees it: the version check is the first thing the entry point runs.
    const old = await keygate(['serve'], {}, root, ['--import', 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.11.1"})']);
    expect(old.code).toBe(1);
    expect(old.stdout).toBe('');
    expect(old.stderr).toBe('keygate: Node 22.15 or newer is required (this is Node 20.11.1); Node 24 LTS is recommended\n');
  });

  it('logs no warning on a clean shutdown with Redis', async () => {
    const kg = await servers.keygate();
    expect(await kg.stop()).toBe(0);
    const lines = kg
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(lines.some((l) => l.msg === 'stopped')).toBe(true);
    expect(lines.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual([]);
  });
});
