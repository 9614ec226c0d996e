import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

export const root = resolve(import.meta.dirname, '..', '..');
export const cli = join(root, 'dist', 'server', 'cli.js');
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface KeygateProcess {
  url: string;
  opsUrl: string;
  port: number;
  opsPort: number;
  proc: ChildProcess;
  /** Everything the process wrote (stdout + stderr), for log assertions and secret scans. */
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export interface KeygateOptions {
  /** Written to a temporary file and passed as KEYGATE_CONFIG. */
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  upstream?: string;
  redisUrl?: string | null;
  /** 'ops': resolve once the internal listener is up (keygate may still be starting). Default: both. */
  waitForPorts?: 'ops' | 'both';
}

// A test that times out never reaches its `finally`; whatever it started dies with the worker instead.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** Runs the built CLI (`keygate serve`) on ephemeral ports, as production runs it. */
export async function startKeygate(opts: KeygateOptions = {}): Promise<KeygateProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-test-'));
  const configFile = join(dir, 'config.yaml');
  // Tests send many bad keys from 127.0.0.1; the failed-attempt block has its own test with its own threshold. A
  // test's own `server` settings keep the ephemeral ports unless they name ports (8080 and 9090 may be taken).
  const server = { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1', ...(opts.config?.server as object | undefined) };
  const config = { limits: { failedAttempts: { maxFailures: 1_000_000 } }, ...opts.config, server };
  writeFileSync(configFile, stringify(config));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    KEYGATE_CONFIG: configFile,
    KEYGATE_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: 'info',
    ...(opts.upstream ? { UPSTREAM_URL: opts.upstream } : {}),
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...opts.env,
  };
  const proc = spawn(process.execPath, [cli, 'serve'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let out = '';
  const exited = new Promise<number | null>((r) =>
    proc.once('exit', (code) => {
      running.delete(proc);
      r(code);
    }),
  );
  const ports = await new Promise<{ port: number; opsPort: number }>((resolvePorts, reject) => {
    const timer = setTimeout(() => reject(new Error(`keygate did not start:\n${out}`)), 15_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"port":(\d+),"opsPort":(\d+)/.exec(out);
      const early = opts.waitForPorts === 'ops' ? /"opsPort":(\d+),"msg":"internal listener up"/.exec(out) : null;
      if (m || early) {
        clearTimeout(timer);
        resolvePorts(m ? { port: Number(m[1]), opsPort: Number(m[2]) } : { port: 0, opsPort: Number(early![1]) });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`keygate exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    ...ports,
    url: `http://127.0.0.1:${ports.port}`,
    opsUrl: `http://127.0.0.1:${ports.opsPort}`,
    proc,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * Runs the built CLI once (`node [nodeArgs] dist/server/cli.js args`) from `cwd`; resolves with its exit code and
 * output, never throwing on a non-zero exit. Only PATH and `env` reach it.
 */
export async function runCli(args: string[], env: Record<string, string> = {}, cwd = root, nodeArgs: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeArgs, cli, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}
