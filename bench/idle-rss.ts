// `node bench/idle-rss.ts <build> <build> [...]`: the idle RSS of keygate builds or node flags, in interleaved
// rounds. Each argument is a dist/ directory, with `+--flag` for more node flags than the image's and `%NAME=value`
// for an environment variable (`dist+--no-maglev%MALLOC_ARENA_MAX=2`). Each round starts every build in turn on the
// same Redis and upstream, waits until 20 s after its start (as the memory phase does: V8's memory reducer has run
// by then) and reads its RSS, anonymous and file-backed, from /proc; then stops it. BENCH_REPEATS rounds (2).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startCommand, stop } from './lib.ts';
import { startBackends } from './backends.ts';

const here = import.meta.dirname;
const targets = process.argv.slice(2);
if (targets.length < 1) throw new Error('usage: node bench/idle-rss.ts <dist[+--flag][%NAME=value]> [...]');
const ROUNDS = Number(process.env.BENCH_REPEATS ?? 2);
const IDLE_MS = 20_000;

const parse = (named: string) => {
  const [withFlags, ...envs] = named.split('%') as [string, ...string[]];
  const [dist, ...flags] = withFlags.split('+') as [string, ...string[]];
  return { dist, flags, env: Object.fromEntries(envs.map((e) => e.split('=') as [string, string])) };
};
const mb = (status: string, field: string) => Math.round(Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024);

const backends = await startBackends();
const results = new Map<string, string[]>(targets.map((t) => [t, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const target of r % 2 ? [...targets].reverse() : targets) {
    const { dist, flags, env } = parse(target);
    const port = await freePort();
    const started = Date.now();
    const { proc } = await startCommand(process.execPath, ['--max-semi-space-size=8', '--heap-growing-percent=50', ...flags, join(dist, 'server/cli.js'), 'serve'], {
      PORT: String(port), OPS_PORT: String(await freePort()), HOST: '127.0.0.1', UPSTREAM_URL: backends.upstreamUrl, REDIS_URL: backends.redisUrl,
      KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'info', KEYGATE_POLICY: join(here, 'policy.yaml'), KEYGATE_CONFIG: join(here, 'keygate.yaml'), ...env,
    }, true, /keygate listening/, join(dist, '..', `idle-${port}.log`));
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS - (Date.now() - started)));
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
    const line = `${mb(status, 'VmRSS')} (${mb(status, 'RssAnon')} + ${mb(status, 'RssFile')})`;
    results.get(target)!.push(line);
    console.log(`${target}: idle RSS ${line} MB`);
    await stop(proc);
  }
}
for (const [target, lines] of results) console.log(`${target}: ${lines.join(', ')} MB (anonymous + file-backed)`);
await backends.stop();
