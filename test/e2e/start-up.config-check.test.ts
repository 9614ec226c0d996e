import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ADMIN_TOKEN, cli, root, startKeygate } from '../helpers/keygate.ts';

// `serve` checks its configuration in a short-lived child process (server/serve-config.ts). What an operator
// does around it must not leave serve waiting for ever or leave the child behind: a preload in NODE_OPTIONS that
// keeps a process alive, a configuration or policy file that never ends (a FIFO), a SIGTERM while the check
// runs, a SIGKILL (which serve cannot act on: the checker must notice it is alone).

const dirs: string[] = [];
const procs: ChildProcess[] = [];
/** Checkers a failed test may have left running. */
const checkers: number[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const pid of checkers.splice(0)) if (running(pid)) process.kill(pid, 'SIGKILL');
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

/**
 * The process exists and has not exited: a zombie (exited, not yet reaped by whoever inherited it) has ended. Its
 * /proc entry's state is the field after the command name in parentheses.
 */
const running = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
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

/** `keygate serve` with a policy file (or KEYGATE_CONFIG itself) that is a FIFO nobody writes to: reading it never ends. */
function serveWithFifo(fifo: 'policy' | 'config' = 'policy'): { proc: ChildProcess; output: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-check-'));
  dirs.push(dir);
  if (fifo === 'config') execFileSync('mkfifo', [join(dir, 'config.yaml')]);
  else {
    execFileSync('mkfifo', [join(dir, 'policy.yaml')]);
    writeFileSync(join(dir, 'config.yaml'), stringify({ server: { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1' }, policy: { file: 'policy.yaml' } }));
  }
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
    const serve = serveWithFifo();
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

  it('ends the check when serve is SIGKILLed while it runs: the checker, blocked reading a FIFO, is not orphaned', async () => {
    const serve = serveWithFifo('config');
    const checker = await checkerOf(serve.proc.pid!);
    checkers.push(checker);
    expect(readFileSync(`/proc/${checker}/cmdline`, 'utf8')).toContain('config-checker');
    // Blocked in the read: still there a moment later, with serve waiting on it.
    await new Promise((r) => setTimeout(r, 300));
    expect(running(checker)).toBe(true);
    serve.proc.kill('SIGKILL');
    expect((await serve.exited).signal).toBe('SIGKILL');
    await expect.poll(() => running(checker), { timeout: 5_000, interval: 50 }).toBe(false);
  }, 30_000);

  it('gives up on a check that never ends: exits 78 saying so, and ends the checker', async () => {
    const serve = serveWithFifo();
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

  it('reads a configuration from a FIFO that is written (as a shell hands over <(...)): serve starts with it', async () => {
    const serve = serveWithFifo('config');
    const config = { server: { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1' }, upstream: { url: 'http://127.0.0.1:3999' } };
    // Opening a FIFO to write waits for its reader: the check.
    await writeFile(join(dirs.at(-1)!, 'config.yaml'), stringify(config));
    await expect.poll(() => serve.output(), { timeout: 15_000 }).toMatch(/"upstream":"http:\/\/127\.0\.0\.1:3999","msg":"keygate listening"/);
    serve.proc.kill('SIGTERM');
    expect((await serve.exited).code).toBe(0);
  }, 30_000);

  // Its watch for serve's end (the IPC channel closing) must not fire on its own disconnect: it answers, then exits
  // with 0 on its own, whether it read regular files only or had a worker thread read a FIFO.
  for (const fifo of [false, true]) {
    it(`answers and exits 0 by itself, the watch not firing (${fifo ? 'a FIFO, read in a worker' : 'regular files'})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'keygate-check-'));
      dirs.push(dir);
      const file = join(dir, 'config.yaml');
      const config = stringify({ upstream: { url: 'http://127.0.0.1:3998' } });
      if (fifo) execFileSync('mkfifo', [file]);
      else writeFileSync(file, config);
      // As serve starts it (server/serve-config.ts).
      const checker = fork(join(dirname(cli), 'config-checker.js'), [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { PATH: process.env.PATH ?? '', KEYGATE_CONFIG: file, KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN } });
      procs.push(checker);
      const answer = new Promise<any>((r) => checker.once('message', r));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => checker.once('exit', (code, signal) => r({ code, signal })));
      if (fifo) await writeFile(file, config);
      expect((await answer).config.upstream.url).toBe('http://127.0.0.1:3998');
      expect(await exited).toEqual({ code: 0, signal: null });
    }, 30_000);
  }
});
