import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, root } from '../helpers/keygate.ts';
import { run, typecheck } from '../helpers/tools.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// What `npm pack` produces, installed into an empty project outside this repository (so nothing resolves from
// this checkout's node_modules): `npx keygate serve` starts on the embedded store, the packed CLI manages it,
// and `import 'keygate/client'` type-checks with real types.

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const project = mkdtempSync(join(tmpdir(), 'keygate-pack-'));
let upstream: Upstream;

beforeAll(async () => {
  upstream = await startUpstream();
  const packed = await run(npm, ['pack', '--pack-destination', project, '--silent'], { cwd: root });
  expect(packed.code, packed.stderr).toBe(0);
  const tarball = readdirSync(project).find((f) => f.endsWith('.tgz'))!;
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'empty', private: true, type: 'module' }));
  // The dependencies come from npm's cache when `npm ci` already fetched them here.
  const installed = await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=dev', join(project, tarball)], { cwd: project });
  expect(installed.code, installed.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  await upstream?.close();
  rmSync(project, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the license, the configuration and the build, and no tests, sources or build info', async () => {
    const listed = await run(npm, ['pack', '--dry-run', '--json'], { cwd: root });
    const files = (JSON.parse(listed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'config/default.yaml', 'config/policy.yaml', 'dist/server/cli.js', 'dist/client/index.d.ts']));
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('src/') || f.endsWith('.tsbuildinfo'))).toEqual([]);
  });

  it('installs into an empty project where `npx keygate serve` starts on the embedded store and the packed CLI manages it', async () => {
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', OPS_PORT: '0', UPSTREAM_URL: upstream.url, KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN };
    // Its own process group: npx does not pass SIGTERM on to the keygate it started, so the group is signalled.
    const proc = spawn('npx', ['--no-install', 'keygate', 'serve'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const ports = new Promise<{ port: number; opsPort: number }>((resolve, reject) => {
      const onData = (c: Buffer) => {
        out += c.toString();
        const m = /"port":(\d+),"opsPort":(\d+)/.exec(out);
        if (m) resolve({ port: Number(m[1]), opsPort: Number(m[2]) });
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`keygate exited with ${code}:\n${out}`)));
    });
    try {
      const { port, opsPort } = await ports;
      expect(out).toContain('embedded in-memory store');
      const created = await run('npx', ['--no-install', 'keygate', 'tenants', 'create', '--name', 'packed', '--json'], {
        cwd: project,
        env: { ...env, KEYGATE_URL: `http://127.0.0.1:${opsPort}` },
      });
      expect(created.code, created.stderr).toBe(0);
      const { apiKey } = JSON.parse(created.stdout) as { apiKey: { key: string } };
      expect((await fetch(`http://127.0.0.1:${port}/v1/hello`, { headers: { 'x-api-key': apiKey.key } })).status).toBe(200);
    } finally {
      if (proc.exitCode === null) {
        const closed = new Promise((r) => proc.once('close', r));
        process.kill(-proc.pid!, 'SIGTERM');
        await closed;
      }
    }
  }, 60_000);

  it("type-checks `import 'keygate/client'` with the package's own types", async () => {
    const file = join(project, 'use-client.ts');
    writeFileSync(
      file,
      [
        "import { createAdminClient, type components } from 'keygate/client';",
        "const admin = createAdminClient({ baseUrl: 'http://127.0.0.1:9090', adminToken: 'token' });",
        "const { data } = await admin.POST('/admin/v1/tenants', { body: { name: 'acme' } });",
        'const key: string | undefined = data?.apiKey.key;',
        "const tenant: components['schemas']['Tenant'] | undefined = data?.tenant;",
        '// The types are real, not `any`: an unknown path and a wrong body are errors.',
        '// @ts-expect-error',
        "await admin.GET('/admin/v1/no-such-path');",
        '// @ts-expect-error',
        "await admin.POST('/admin/v1/tenants', { body: { name: 42 } });",
        'export { key, tenant };',
        '',
      ].join('\n'),
    );
    expect(await typecheck([file])).toEqual({ code: 0, output: '' });
  }, 60_000);
});
