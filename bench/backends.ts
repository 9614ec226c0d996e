// What the CPU benchmarks (profile.ts, ab.ts) put behind the proxies they measure: a redis-server on a free port
// with `count` keys provisioned (rate limits on, never reached), and the bench upstream.
import { join } from 'node:path';
import { freePort, startCommand, startScript, stop } from './lib.ts';
import { provision } from './provision.ts';

export async function startBackends(count = 10) {
  const redisPort = await freePort();
  const redis = await startCommand('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], {}, false, /Ready to accept connections/);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const upstreamPort = await freePort();
  const upstream = await startScript(join(import.meta.dirname, 'systems/upstream.ts'), { PORT: String(upstreamPort) }, false);
  const { keys } = await provision(redisUrl, count, { requestsPerMinute: 1_000_000_000, requestsPerDay: 1_000_000_000 });
  return {
    redisUrl,
    upstreamUrl: `http://127.0.0.1:${upstreamPort}`,
    keys,
    async stop() {
      await stop(upstream);
      redis.proc.kill('SIGKILL');
    },
  };
}
