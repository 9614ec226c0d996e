import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';

export interface RedisServer {
  port: number;
  url: string;
  /** A client for test assertions (scans, counters). */
  client: Redis;
  /** SIGSTOP / SIGCONT: Redis stays connected but answers nothing (a stall, not a refusal). */
  pause(): void;
  resume(): void;
  /** Stops the server; `start()` brings it back on the same port, empty. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function waitForPing(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// Servers die with the test worker even when a test times out before its cleanup runs.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** A real redis-server on a free port, owned by one test file (never the machine's shared 6379). */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  let proc: ChildProcess | null = null;
  const start = async () => {
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    proc = p;
    running.add(p);
    p.once('exit', () => running.delete(p));
    proc.on('error', (err) => {
      throw new Error(`cannot start redis-server (is it installed? .ci/run installs it): ${err.message}`);
    });
    await waitForPing(port);
  };
  await start();
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  const stop = () =>
    new Promise<void>((resolve) => {
      const p = proc;
      // A process killed by a signal has no exit code, only a signal code.
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGCONT');
      p.kill('SIGKILL');
    });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    pause: () => proc?.kill('SIGSTOP'),
    resume: () => proc?.kill('SIGCONT'),
    stop,
    start,
    async close() {
      client.disconnect();
      await stop();
    },
  };
}
