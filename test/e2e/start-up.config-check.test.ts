import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ADMIN_TOKEN, cli, root, startKeygate } from '../helpers/keygate.ts';

// `serve` checks its configuration in a short-lived child process (server/serve-config.ts). What an operator
// does around it must not leave serve waiting for ever or leave the child behind: a preload in NODE_OPTIONS that
// keeps a process alive, a policy file that never ends (a FIFO), a SIGTERM while the check runs.

const dirs: string[] = [];
const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const children = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** `keygate serve` with a policy file that is a FIFO nobody writes to: reading it never ends. */
function serveWithFifoPolicy(): { proc: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-check-'));
  dirs.push(dir);
  execFileSync('mkfifo', [join(dir, 'policy.yaml')]);
  writeFileSync(join(dir, 'config.yaml'), stringify({ server: { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1' }, policy: { file: 'policy.yaml' } }));
  const proc = spawn(process.execPath, [cli, 'serve'], { cwd: root, env: { PATH: process.env.PATH ?? '', KEYGATE_CONFIG: join(dir, 'config.yaml'), KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  return { proc, output: () => out, exited };
}

async function checkerOf(pid: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const [child] = children(pid);
    if (child) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('serve started no configuration check');
}

describe("serve's configuration check, in a child process", () => {
  it('starts when a NODE_OPTIONS preload keeps every process alive, and leaves no checker behind', async () => {
    const kg = await startKeygate({ env: { NODE_OPTIONS: `--require ${join(root, 'test', 'fixtures', 'keep-alive-preload.cjs')}` } });
    try {
      expect((await fetch(`${kg.opsUrl}/healthz`)).status).toBe(200);
      expect(children(kg.proc.pid!)).toEqual([]);
    } finally {
      expect(await kg.stop()).toBe(0);
    }
  }, 30_000);

  it('stops the check with it on SIGTERM while the check runs: the checker is not orphaned', async () => {
    const serve = serveWithFifoPolicy();
    const checker = await checkerOf(serve.proc.pid!);
    serve.proc.kill('SIGTERM');
    const { code, signal } = await serve.exited;
    expect(code === 143 || signal === 'SIGTERM').toBe(true);
    // SIGKILL is sent before serve exits; the kernel may take a moment to end the process.
    for (let i = 0; i < 40 && alive(checker); i++) await new Promise((r) => setTimeout(r, 50));
    const left = alive(checker);
    if (left) process.kill(checker, 'SIGKILL');
    expect(left).toBe(false);
  }, 30_000);

  it('gives up on a check that never ends: exits 78 saying so, and ends the checker', async () => {
    const serve = serveWithFifoPolicy();
    const checker = await checkerOf(serve.proc.pid!);
    const { code } = await serve.exited;
    // SIGKILL is sent before serve exits; the kernel may take a moment to end the process.
    for (let i = 0; i < 40 && alive(checker); i++) await new Promise((r) => setTimeout(r, 50));
    const left = alive(checker);
    if (left) process.kill(checker, 'SIGKILL');
    expect(code).toBe(78);
    expect(serve.output()).toMatch(/keygate: invalid configuration:\n {2}- \(check\): the configuration check did not finish in 20 s/);
    expect(left).toBe(false);
  }, 60_000);
});
