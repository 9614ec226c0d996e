// `node bench/ab.ts <a> <b> [...]`: CPU µs per proxied request of two or more proxies on the same Redis,
// upstream and load, measured in interleaved rounds, so a busy machine slows all alike. Each argument is a keygate
// build (its dist/ directory, `dist@file.yaml` with another configuration) or a system script (bench/systems/*.ts,
// started with PORT and UPSTREAM_URL; `script.ts@NAME=value` with one more variable in its environment). For
// deciding whether a change to the hot path pays: CPU time per request is steadier than req/s on a
// shared machine, and the minimum over rounds is the least disturbed. Prints each round, medians and minima.
// `dist+--flag[+--flag...]` runs that build with more node flags than the image's (`dist+--no-maglev`, say).
import { join } from 'node:path';
import { cpuSplitMicros, freePort, otherCores, pinned, processTree, startCommand, startScript, stop } from './lib.ts';
import { startBackends } from './backends.ts';
import { wrk } from './wrk.ts';

const here = import.meta.dirname;
const targets = process.argv.slice(2);
if (targets.length < 2) throw new Error('usage: node bench/ab.ts <dist or system script> <dist or system script> [...]');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_REPEATS ?? 4);

const backends = await startBackends();
const { redisUrl, upstreamUrl, keys } = backends;
// `dist@file.yaml`: that build with another configuration file than bench/keygate.yaml (a feature off, say).
const start = async (named: string) => {
  const [target, ...flags] = named.split('+') as [string, ...string[]];
  const [dist, config = join(here, 'keygate.yaml')] = target.split('@') as [string, string?];
  // (For a script, what follows @ is an environment variable, not a configuration file.)
  const port = await freePort();
  if (dist.endsWith('.ts')) {
    const extra = target.includes('@') ? Object.fromEntries([target.split('@')[1]!.split('=') as [string, string]]) : {};
    const proc = await startScript(dist, { PORT: String(port), UPSTREAM_URL: upstreamUrl, ...extra }, true, ['--max-semi-space-size=8', '--heap-growing-percent=50']);
    return { proc, url: `http://127.0.0.1:${port}/v1/calls/1`, dist: named };
  }
  const { proc } = await startCommand(process.execPath, ['--max-semi-space-size=8', '--heap-growing-percent=50', ...flags, join(dist, 'server/cli.js'), 'serve'], {
    PORT: String(port), OPS_PORT: String(await freePort()), HOST: '127.0.0.1', UPSTREAM_URL: upstreamUrl, REDIS_URL: redisUrl,
    KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'info', KEYGATE_POLICY: join(here, 'policy.yaml'), KEYGATE_CONFIG: config,
  }, true, /keygate listening/, join(dist, '..', `ab-${port}.log`));
  return { proc, url: `http://127.0.0.1:${port}/v1/calls/1`, dist: named };
};
const systems = [];
for (const t of targets) systems.push(await start(t));
const headers = { 'x-api-key': keys[0]! };
const results = new Map<string, number[]>(systems.map((s) => [s.dist, []]));
for (const s of systems) await wrk(s.url, { connections: 64, seconds: 2, headers, cpus: pinned ? otherCores : undefined });
// The process and its children: with server.workers the primary forks the workers that do the work. System time
// apart too: a change that writes more (header bytes, syscalls) shows there first.
const cpuOf = (pid: number) => processTree(pid).reduce((sum, p) => {
  const { user, system } = cpuSplitMicros(p);
  return { total: sum.total + user + system, system: sum.system + system };
}, { total: 0, system: 0 });
for (let r = 0; r < ROUNDS; r++) {
  for (const s of r % 2 ? [...systems].reverse() : systems) {
    await wrk(s.url, { connections: 64, seconds: 1, headers, cpus: pinned ? otherCores : undefined });
    const before = cpuOf(s.proc.pid!);
    const run = await wrk(s.url, { connections: 64, seconds: SECONDS, headers, cpus: pinned ? otherCores : undefined });
    const after = cpuOf(s.proc.pid!);
    const us = (after.total - before.total) / run.total;
    results.get(s.dist)!.push(us);
    console.log(`${s.dist}: ${run.rps} req/s, ${us.toFixed(1)} µs CPU/request (system ${((after.system - before.system) / run.total).toFixed(1)})`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [dist, xs] of results) console.log(`${dist}: median ${median(xs).toFixed(1)}, min ${Math.min(...xs).toFixed(1)} µs CPU/request`);
for (const s of systems) await stop(s.proc);
await backends.stop();
