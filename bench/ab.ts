// `node bench/ab.ts <distA> <distB>`: CPU µs per proxied request of two keygate builds on the same Redis,
// upstream and load, measured in interleaved rounds (ABAB…), so a busy machine slows both alike. For deciding
// whether a change to the hot path pays (issue 18): CPU time per request is steadier than req/s on a shared
// machine. Prints each round and the medians.
import { join } from 'node:path';
import { cpuMicros, freePort, otherCores, pinned, startCommand, startScript, stop } from './lib.ts';
import { provision } from './provision.ts';
import { wrk } from './wrk.ts';

const here = import.meta.dirname;
const [distA, distB] = process.argv.slice(2);
if (!distA || !distB) throw new Error('usage: node bench/ab.ts <distA> <distB>');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_REPEATS ?? 4);

const redisPort = await freePort();
const redis = await startCommand('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], {}, false, /Ready to accept connections/);
const redisUrl = `redis://127.0.0.1:${redisPort}`;
const upstreamPort = await freePort();
const upstream = await startScript(join(here, 'systems/upstream.ts'), { PORT: String(upstreamPort) }, false);
const { keys } = await provision(redisUrl, 10, { requestsPerMinute: 1_000_000_000, requestsPerDay: 1_000_000_000 });
const start = async (dist: string) => {
  const port = await freePort();
  const { proc } = await startCommand(process.execPath, ['--max-semi-space-size=8', '--heap-growing-percent=50', join(dist, 'server/cli.js'), 'serve'], {
    PORT: String(port), OPS_PORT: String(await freePort()), HOST: '127.0.0.1', UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`, REDIS_URL: redisUrl,
    KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'info', KEYGATE_POLICY: join(here, 'policy.yaml'), KEYGATE_CONFIG: join(here, 'keygate.yaml'),
  }, true, /keygate listening/, join(dist, '..', `ab-${port}.log`));
  return { proc, url: `http://127.0.0.1:${port}/v1/calls/1`, dist };
};
const systems = [await start(distA), await start(distB)];
const headers = { 'x-api-key': keys[0]! };
const results = new Map<string, number[]>(systems.map((s) => [s.dist, []]));
for (const s of systems) await wrk(s.url, { connections: 64, seconds: 2, headers, cpus: pinned ? otherCores : undefined });
for (let r = 0; r < ROUNDS; r++) {
  for (const s of r % 2 ? [...systems].reverse() : systems) {
    await wrk(s.url, { connections: 64, seconds: 1, headers, cpus: pinned ? otherCores : undefined });
    const before = cpuMicros(s.proc.pid!);
    const run = await wrk(s.url, { connections: 64, seconds: SECONDS, headers, cpus: pinned ? otherCores : undefined });
    const us = (cpuMicros(s.proc.pid!) - before) / run.total;
    results.get(s.dist)!.push(us);
    console.log(`${s.dist}: ${run.rps} req/s, ${us.toFixed(1)} µs CPU/request`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [dist, xs] of results) console.log(`median ${dist}: ${median(xs).toFixed(1)} µs CPU/request`);
for (const s of systems) await stop(s.proc);
await stop(upstream);
redis.proc.kill('SIGKILL');
