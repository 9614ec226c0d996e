import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DockerfileParser, type Copy } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { root } from '../helpers/keygate.ts';
import { startUpstream } from '../helpers/upstream.ts';

// There is no Docker engine here: the Dockerfile is checked by a parser, and the layout its final stage
// produces is built by hand (production-only install in a temporary directory) and started as CMD starts it.

const run = promisify(execFile);
const dockerfile = DockerfileParser.parse(readFileSync(join(root, 'Dockerfile'), 'utf8'));
const instructions = dockerfile.getInstructions();
const stages = dockerfile.getFROMs();
const finalStart = stages.at(-1)!.getRange().start.line;
const final = instructions.filter((i) => i.getRange().start.line >= finalStart);
const args = (keyword: string) => final.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? '');
const jsonArgs = (keyword: string): string[] => {
  const content = args(keyword).at(-1)!;
  return JSON.parse(content.slice(content.indexOf('['))) as string[];
};

describe('Dockerfile', () => {
  it('is multi-stage on a slim Node 24 base, installs production dependencies only, runs as non-root', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const from of stages) expect(from.getImageName()).toBe('node');
    expect(stages.at(-1)!.getImageTag()).toMatch(/^24(\.\d+)*-slim$/);
    const runs = args('RUN');
    expect(runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(runs.some((r) => /npm run build/.test(r))).toBe(false); // built in the earlier stage
    const fromBuild = final.filter((i) => i.getKeyword() === 'COPY' && (i as Copy).getFromFlag()?.getValue() === 'build');
    expect(fromBuild.map((i) => i.getArgumentsContent())).toEqual(['/app/dist ./dist']);
    const user = args('USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(args('EXPOSE').join(' ').split(/\s+/).sort()).toEqual(['8080', '9090']);
    // keygate's own default for the internal listener is loopback; a published port needs the interface.
    expect(args('ENV')).toContain('OPS_HOST=0.0.0.0');
    expect(jsonArgs('HEALTHCHECK')).toEqual(['node', 'dist/server/cli.js', 'healthcheck']);
    expect(jsonArgs('CMD')).toEqual(['node', '--max-semi-space-size=8', '--heap-growing-percent=50', 'dist/server/cli.js', 'serve']);
  });

  it('produces a layout that serves: production-only install, started as CMD starts it', async () => {
    const app = mkdtempSync(join(tmpdir(), 'keygate-image-'));
    // COPY package.json package-lock.json; RUN npm ci --omit=dev; COPY --from=build dist; COPY config
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(root, f), join(app, f));
    await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app, env: { ...process.env, NODE_ENV: 'production' } });
    cpSync(join(root, 'dist'), join(app, 'dist'), { recursive: true });
    cpSync(join(root, 'config'), join(app, 'config'), { recursive: true });
    expect(existsSync(join(app, 'node_modules', 'express'))).toBe(true);
    expect(existsSync(join(app, 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false);

    const upstream = await startUpstream();
    const [port, opsPort] = [await freePort(), await freePort()];
    const [cmd, ...cmdArgs] = jsonArgs('CMD');
    const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', PORT: String(port), OPS_PORT: String(opsPort), UPSTREAM_URL: upstream.url, KEYGATE_ADMIN_TOKEN: 'image-test-admin-token' };
    const proc = spawn(cmd === 'node' ? process.execPath : cmd!, cmdArgs, { cwd: app, env, stdio: 'ignore' });
    try {
      await expect.poll(async () => (await fetch(`http://127.0.0.1:${opsPort}/healthz`).catch(() => null))?.status, { timeout: 15_000 }).toBe(200);
      // The HEALTHCHECK command itself passes.
      const health = jsonArgs('HEALTHCHECK');
      await run(process.execPath, health.slice(1), { env, cwd: app });
      const created = await fetch(`http://127.0.0.1:${opsPort}/admin/v1/tenants`, {
        method: 'POST',
        headers: { authorization: 'Bearer image-test-admin-token', 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'image' }),
      });
      const { apiKey } = (await created.json()) as { apiKey: { key: string } };
      expect((await fetch(`http://127.0.0.1:${port}/v1/x`, { headers: { 'x-api-key': apiKey.key } })).status).toBe(200);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      await upstream.close();
    }
  }, 120_000);
});
