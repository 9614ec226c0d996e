// `npm run bench`: every system under test on loopback, the same upstream and the same load, one table and
// one JSON file (bench/results/). See bench/README.md for what is measured and how to read it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { authMicro } from './auth-micro.ts';
import { authzBench } from './authz.ts';
import { tokenMicro } from './token-micro.ts';
import { cpuMicros, freePort, openLoop, otherCores, peakRssMb, proxyCore, percentile, pinned, processTree, startCommand, startScript, stop, zipf, type OpenLoopResult } from './lib.ts';
import { consolePhase } from './console.ts';
import { expiryPhase } from './expiry.ts';
import { memoryPhase } from './memory.ts';
import { provision } from './provision.ts';
import { counted, type Tally } from './redis-count.ts';
import { nginxConfig, nginxInstalled } from './systems/nginx.ts';
import { profileRun, voicePhase, type VoiceSystem } from './voice.ts';
import { wsMemoryPhase } from './ws-memory.ts';
import { wrk, wrkInstalled, type LoadResult } from './wrk.ts';

const here = import.meta.dirname;
const root = join(here, '..');
const quick = process.env.BENCH_QUICK === '1';
/**
 * `BENCH_ONLY=authz`: only the authorizer figures (bench/authz.ts), a couple of minutes instead of nine;
 * `BENCH_ONLY=memory`: only the memory phase (bench/memory.ts);
 * `BENCH_ONLY=voice`: only the voice relay (bench/voice.ts): WebSocket sessions with a frame every 20 ms, then
 *   the memory per session (bench/ws-memory.ts);
 * `BENCH_ONLY=ws-memory`: only the memory per WebSocket session, keygate against the bare relay (bench/ws-memory.ts);
 * `BENCH_ONLY=redis`: only keygate's Redis commands (bench/redis-count.ts), about three minutes;
 * `BENCH_ONLY=tokens`: only the session-token figures (bench/token-micro.ts and the proxied A/B below);
 * `BENCH_ONLY=expiry`: only the expiry scan over a million keys (bench/expiry.ts), about ten minutes;
 * `BENCH_ONLY=console`: only the operator console's pages in Chromium (bench/console.ts), a few minutes.
 */
const only = process.env.BENCH_ONLY;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const REPEATS = Number(process.env.BENCH_REPEATS ?? (quick ? 1 : 3));
const CONNECTIONS = 64;
const PATH = '/v1/calls/1';

/** keygate runs with the V8 flags its image runs with (the Dockerfile's CMD), so the figures are the image's. */
const dockerCmd = JSON.parse(/^CMD (\[.*\])$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))![1]!) as string[];
// BENCH_NODE_FLAGS (space-separated) replaces them, for measuring other choices (bench/README.md, Memory).
const keygateNodeFlags = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? dockerCmd.slice(1).filter((a) => a.startsWith('--'));

interface System {
  name: string;
  url: string;
  proc: ChildProcess;
}

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  cpuUsPerRequest: number;
  peakRssMb: number;
  errors: number;
  runs: Array<{ rps: number; p99: number; cpuUsPerRequest: number }>;
  fixedRate: OpenLoopResult[];
}

const cpuOf = (proc: ChildProcess) => processTree(proc.pid!).reduce((sum, pid) => sum + cpuMicros(pid), 0);
const rssOf = (proc: ChildProcess) => processTree(proc.pid!).reduce((sum, pid) => sum + peakRssMb(pid), 0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Closed-loop load, `keys` cycled through in order (or one fixed header set): wrk when installed, else autocannon. */
async function load(url: string, seconds: number, headers: Record<string, string>, keys?: string[]): Promise<LoadResult> {
  return loadUrl(url + PATH, seconds, headers, keys);
}

async function loadUrl(url: string, seconds: number, headers: Record<string, string>, keys?: string[]): Promise<LoadResult> {
  if (wrkInstalled) return wrk(url, { connections: CONNECTIONS, seconds, headers, keys, cpus: pinned ? otherCores : undefined });
  let n = 0;
  const r = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, ...headers, ...(keys ? { 'x-api-key': keys[n++ % keys.length]! } : {}) } }) }],
  });
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, p999: r.latency.p99_9, total: r.requests.total, non2xx: r.non2xx + r.errors };
}

/** Maximum throughput with the proxy's CPU time over the run. */
async function measure(sys: System, seconds: number, headers: Record<string, string>, keys?: string[]) {
  const before = cpuOf(sys.proc);
  const r = await load(sys.url, seconds, headers, keys);
  return { ...r, cpuUsPerRequest: round((cpuOf(sys.proc) - before) / Math.max(1, r.total)) };
}

async function startKeygate(redisUrl: string, upstreamUrl: string, extraFlags: string[] = [], extraEnv: Record<string, string> = {}): Promise<System & { opsUrl: string; authzPort: number }> {
  const [port, opsPort, authzPort] = [await freePort(), await freePort(), await freePort()];
  // Its log goes to a file, as a container runtime would take it: not through a pipe this process must read on
  // the load generator's core.
  const log = join(mkdtempSync(join(tmpdir(), 'keygate-bench-log-')), 'keygate.log');
  const { proc } = await startCommand(process.execPath, [...keygateNodeFlags, ...extraFlags, join(root, 'dist/server/cli.js'), 'serve'], {
    PORT: String(port), OPS_PORT: String(opsPort), HOST: '127.0.0.1', UPSTREAM_URL: upstreamUrl, REDIS_URL: redisUrl,
    // The authorizer listener too (bench/authz.ts); the proxy's hot path does not touch it.
    AUTHZ_PORT: String(authzPort), AUTHZ_TRUSTED_GATEWAYS: '127.0.0.1/32',
    KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'info', KEYGATE_POLICY: join(here, 'policy.yaml'),
    // Each mix is measured on its own: the invalid-key mix must not leave 127.0.0.1 blocked for the next.
    KEYGATE_CONFIG: join(here, 'keygate.yaml'),
    ...extraEnv,
  }, true, /keygate listening/, log);
  return { name: 'keygate (cache, limits, metrics, logs)', url: `http://127.0.0.1:${port}`, proc, opsUrl: `http://127.0.0.1:${opsPort}`, authzPort };
}

/**
 * keygate for the voice relay (bench/voice.ts): a tenant on the enterprise plan and a key allowed `sessions` at
 * once with a session-minute quota, so every session takes a slot and is metered as in production.
 */
async function voiceKeygate(redisUrl: string, upstreamUrl: string, sessions: number, workers = 1, probe?: { flags: string[]; env: Record<string, string> }): Promise<VoiceSystem> {
  const env: Record<string, string> = { ...(workers > 1 ? { KEYGATE_WORKERS: String(workers) } : {}), ...probe?.env };
  const { profile, flags } = probe ? { profile: undefined, flags: probe.flags } : profileRun('keygate');
  const kg = await startKeygate(redisUrl, upstreamUrl, flags, env);
  if (workers > 1) {
    // Started on the proxy's core like every system; the workers are then allowed on every core.
    await new Promise((r) => setTimeout(r, 3_000)); // every worker listening
    for (const pid of processTree(kg.proc.pid!)) spawnSync('taskset', ['-a', '-cp', `0-${availableParallelism() - 1}`, String(pid)], { stdio: 'ignore' });
  }
  const post = async (url: string, headers: Record<string, string>, body: unknown) => {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    if (r.status !== 201) throw new Error(`${url}: ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, any>;
  };
  const made = await post(`${kg.opsUrl}/admin/v1/tenants`, { authorization: 'Bearer bench-admin-token-0123456789' }, { name: 'voice', plan: 'enterprise' });
  const key = await post(`${kg.url}/keygate/v1/api-keys`, { 'x-api-key': made.apiKey.key }, { maxConcurrentConnections: sessions, quota: { sessionMinutesPerMonth: 100_000_000 } });
  return { name: workers > 1 ? `keygate, ${workers} workers` : 'keygate', url: kg.url, headers: { 'x-api-key': key.key as string }, proc: kg.proc, stop: () => stop(kg.proc), profile };
}

/** keygate as nginx's authorizer against keygate as the proxy, and the authorizer's decisions per second. */
async function runAuthz(redisUrl: string, upstreamUrl: string, upstreamPort: number, key: string): Promise<unknown> {
  if (!nginxInstalled) {
    console.log('nginx not installed: the authorizer comparison was skipped (apt-get install nginx-light)');
    return 'not run: nginx is not installed (apt-get install nginx-light)';
  }
  const kg = await startKeygate(redisUrl, upstreamUrl);
  try {
    const r = await authzBench({
      kg, authzPort: kg.authzPort, upstreamPort, key, path: PATH, seconds: SECONDS, repeats: REPEATS,
      load: (url, seconds, headers) => load(url, seconds, headers),
      decisionLoad: (url, seconds, headers) => loadUrl(url, seconds, headers),
    });
    const line = (name: string, x: typeof r.inline) => `| ${name} | ${x.rps} | ${x.p50} | ${x.p99} | ${x.cpuUsPerRequest} | ${x.non2xx} |`;
    console.log('\n| keygate as the authorizer (one core) | req/s | p50 ms | p99 ms | CPU µs/req | errors |\n|---|---|---|---|---|---|');
    console.log(line('authorizer alone: decisions (/forward-auth)', r.decisionsPerSecond));
    console.log(line('keygate inline (proxy)', r.inline));
    console.log(line('nginx + keygate authorizer (auth_request)', r.nginxAuthorizer));
    return r;
  } finally {
    await stop(kg.proc);
  }
}

/** Connect rate (1,000 sessions, 50 at a time) and the round trip of a 320-byte frame (20 ms of 8 kHz audio). */
async function wsBench(base: string, headers: Record<string, string>) {
  const n = quick ? 200 : 1_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, () => new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/voice/a/stream`, { headers });
        ws.once('open', () => (ws.close(), resolve()));
        ws.once('error', reject);
      })),
    );
  }
  const connectsPerSecond = Math.round(n / ((performance.now() - t0) / 1000));
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/voice/a/stream`, { headers });
  await new Promise((r) => ws.once('open', r));
  const frame = Buffer.alloc(320, 1);
  const rtts: number[] = [];
  for (let i = 0; i < (quick ? 500 : 2_000); i++) {
    const t = performance.now();
    await new Promise<void>((r) => {
      ws.once('message', () => r());
      ws.send(frame);
    });
    rtts.push(performance.now() - t);
  }
  ws.close();
  rtts.sort((a, b) => a - b);
  return { connectsPerSecond, frameRttP50Ms: round(percentile(rtts, 50), 3), frameRttP99Ms: round(percentile(rtts, 99), 3) };
}

/** The memory phase (bench/memory.ts) and the least a cached key can cost in this runtime (memory-floor.ts). */
async function runMemory(redisUrl: string, upstreamUrl: string): Promise<{ memory: unknown; memoryFloor: unknown }> {
  const count = quick ? 10_000 : 100_000;
  const memory = await memoryPhase({ redisUrl, upstreamUrl, count, path: PATH, start: (flags, env) => startKeygate(redisUrl, upstreamUrl, flags, env) });
  console.log('memory (fresh keygate process)', memory);
  const floor = spawnSync(process.execPath, ['--expose-gc', join(here, 'memory-floor.ts'), String(count)], { encoding: 'utf8' });
  if (floor.status !== 0) throw new Error(`memory-floor.ts failed: ${floor.stderr}`);
  const memoryFloor = JSON.parse(floor.stdout) as unknown;
  console.log('memory floor (an lru-cache entry per key, nothing else)', memoryFloor);
  if (typeof memory === 'object') {
    console.log(`\n| memory (${count.toLocaleString('en')} keys) | measured | target |\n|---|---|---|`);
    console.log(`| RSS 3 s after start / idle (20 s after start: anonymous + file-backed) | ${memory.startRssMb} / ${memory.idleRssMb} MB (${memory.idleAnonMb} + ${memory.idleFileMb}) | idle <= 80 MB |`);
    console.log(`| heap per cached key (after a GC; just served, with its usage row) | ${memory.heapBytesPerCachedKey} B (${memory.heapBytesPerKeyJustServed} B) | <= 400 B |`);
    console.log(`| RSS / peak RSS, ${memory.cachedKeys} cached keys + ${memory.openWebSockets} WebSockets | ${memory.rssMb} / ${memory.peakRssMb} MB | report |`);
    console.log(`| RSS 45 s after the last request, the cache full | ${memory.cachedSettledRssMb} MB | report |`);
  }
  return { memory, memoryFloor };
}

/** The mixes' key sequences (cycled in order): the first key hot; Zipf over all of them; invalid; over their limit. */
function mixesOf(keys: string[], limited: string[]): Record<string, string[]> {
  const pick = zipf(keys.length);
  const zipfKeys = Array.from({ length: 20_000 }, () => keys[pick()]!);
  const invalid = zipfKeys.map((k) => `${k.slice(0, 10)}${k.slice(11)}x`); // right shape, wrong checksum
  const overLimit = Array.from({ length: 1_000 }, (_, i) => limited[i % limited.length]!);
  return { 'hot key': [keys[0]!], 'zipf over 10,000 keys': zipfKeys, 'invalid keys': invalid, 'over-limit keys': overLimit };
}

/**
 * Redis commands in steady state (bench/redis-count.ts, MONITOR): what requests cause, per request, and the
 * background work apart. The Zipf run lasts a minute, so that every active key's per-minute window ends once in
 * it (a lease per key, window and replica), after a warm-up longer than a third of the cache TTL (the keys the
 * mixes left in their cache's last third are refreshed, or expired ones read again, before it starts).
 */
async function redisSteadyState(kg: System, ports: number[], hotHeaders: Record<string, string>, zipfKeys: string[]): Promise<{ hot: Tally; zipf: Tally }> {
  await load(kg.url, 3, hotHeaders);
  const hot = await countedLoad(kg, ports, quick ? 10 : 20, hotHeaders);
  await load(kg.url, 12, {}, zipfKeys);
  return { hot, zipf: { ...(await countedLoad(kg, ports, quick ? 30 : 60, {}, zipfKeys)), distinctKeys: new Set(zipfKeys).size } };
}

/** keygate under load for `seconds`, its Redis commands counted (with the rate and CPU per request, to read them by). */
/**
 * Session tokens: the in-process figures (bench/token-micro.ts), then proxied requests with a token against the
 * same key's own requests, rounds interleaved on one keygate, with the Redis commands each sends (MONITOR).
 */
async function runTokens(redisUrl: string, upstreamUrl: string, ports: number[], key: string) {
  const micro = await tokenMicro(quick ? 300_000 : 1_000_000);
  console.log(`session tokens in process: first verification ${micro.verify.nsPerOp} ns (${micro.verify.opsPerSecond}/s), decision on a remembered token ${micro.decision.nsPerOp} ns (${micro.decision.opsPerSecond}/s)`);
  const kg = await startKeygate(redisUrl, upstreamUrl, [], { KEYGATE_TOKEN_SIGNING_KEYS: 'bench:bench-token-signing-secret-0123456789' });
  const minted = await fetch(`${kg.url}/keygate/v1/session-tokens`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ ttlSeconds: 3600 }) });
  const { token } = (await minted.json()) as { token: string };
  const forms = { key: { 'x-api-key': key }, token: { authorization: `Bearer ${token}` } };
  const rounds: Record<keyof typeof forms, Tally[]> = { key: [], token: [] };
  for (const headers of Object.values(forms)) await load(kg.url, 2, headers);
  for (let i = 0; i < REPEATS; i++) {
    for (const [form, headers] of Object.entries(forms) as Array<[keyof typeof forms, Record<string, string>]>) {
      rounds[form].push(await countedLoad(kg, ports, quick ? 3 : SECONDS, headers));
    }
  }
  await stop(kg.proc);
  const mid = (form: keyof typeof forms, f: (t: Tally) => number) => median(rounds[form].map(f));
  const out = {
    micro,
    proxied: Object.fromEntries((Object.keys(forms) as Array<keyof typeof forms>).map((form) => [form, { rps: mid(form, (t) => t.rps ?? 0), cpuUsPerRequest: mid(form, (t) => t.cpuUsPerRequest ?? 0), redisPerRequest: mid(form, (t) => t.perRequest) }])),
    rounds,
  };
  const [k, t] = [out.proxied.key!, out.proxied.token!];
  console.log(`session tokens proxied: token ${t.rps} req/s (${t.cpuUsPerRequest} µs, ${t.redisPerRequest} Redis commands/request) vs key ${k.rps} req/s (${k.cpuUsPerRequest} µs, ${k.redisPerRequest}): ratio ${round(t.rps / k.rps, 3)}`);
  return out;
}

async function countedLoad(kg: System, ports: number[], seconds: number, headers: Record<string, string>, keys?: string[]): Promise<Tally> {
  let m!: Awaited<ReturnType<typeof measure>>;
  const t = await counted(ports, async () => (m = await measure(kg, seconds, headers, keys)).total);
  return { ...t, rps: m.rps, cpuUsPerRequest: m.cpuUsPerRequest };
}

function printRedis(redis: { mixes: Record<string, Tally>; steady: Record<string, Tally> }): void {
  console.log('\nRedis commands sent by keygate (MONITOR; one EVALSHA is one command): per request, what requests caused; background apart');
  console.log('| run | requests | s | req/s, CPU µs/req | per request | by cause (per request) | background commands (per s) | all ÷ requests | INFO commandstats ÷ requests (in-script too) |\n|---|---|---|---|---|---|---|---|---|');
  const line = (name: string, t: Tally) =>
    console.log(`| ${name} | ${t.requests} | ${t.seconds} | ${t.rps ?? '—'}, ${t.cpuUsPerRequest ?? '—'} | ${t.perRequest} | ${Object.entries(t.requestCauses).map(([k, v]) => `${k} ${v}`).join('; ') || '—'} | ${t.background} (${t.backgroundPerSecond}/s: ${Object.entries(t.backgroundCauses).map(([k, v]) => `${k} ${v}`).join('; ') || '—'}${t.refreshKeysRead ? `; ${t.refreshKeysRead} records read by the refresh` : ''}) | ${t.allPerRequest} | ${t.commandstatsPerRequest ?? '—'} |`);
  for (const [name, t] of Object.entries(redis.steady)) line(`steady state, ${name}${t.distinctKeys ? ` (${t.distinctKeys} distinct keys)` : ''}`, t);
  for (const [name, t] of Object.entries(redis.mixes)) line(`mix ${name}`, t);
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = {
    startedAt: new Date().toISOString(), node: process.version, pinnedToOneCore: pinned, loadGenerator: wrkInstalled ? 'wrk' : 'autocannon',
    secondsPerRun: SECONDS, repeats: REPEATS, connections: CONNECTIONS, keygateNodeFlags,
  };
  console.log(`load generator: ${results.loadGenerator}; ${REPEATS} run(s) of ${SECONDS} s per system, interleaved; keygate node flags: ${keygateNodeFlags.join(' ') || 'none'}`);
  const redisPort = await freePort();
  const redis = await startCommand('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], {}, false, /Ready to accept connections/);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const admin = new Redis(redisUrl);
  const upstreamPort = await freePort();
  const upstream = await startScript(join(here, 'systems/upstream.ts'), { PORT: String(upstreamPort) }, false);
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  /** Writes the results as bench/results/bench[-kind]-<time>.json and stops Redis and the upstream. */
  const finish = async (kind: string | null) => {
    mkdirSync(join(here, 'results'), { recursive: true });
    const file = join(here, 'results', `bench${kind ? `-${kind}` : ''}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(results, null, 2));
    console.log(`\nwrote ${file}`);
    await stop(upstream);
    admin.disconnect();
    redis.proc.kill('SIGKILL');
  };
  const wsMemory = () => wsMemoryPhase({ upstreamUrl, keygate: async (flags, env) => {
    const kg = await voiceKeygate(redisUrl, upstreamUrl, 2_000, 1, { flags, env });
    return { ...kg, proc: kg.proc! };
  } });
  if (only === 'voice') {
    results.voice = await voicePhase({ upstreamUrl, upstreamPort, upstreamPid: upstream.pid!, keygate: (n, workers) => voiceKeygate(redisUrl, upstreamUrl, n, workers) });
    results.wsMemory = await wsMemory();
    return finish('voice');
  }
  if (only === 'ws-memory') {
    results.wsMemory = await wsMemory();
    return finish('ws-memory');
  }
  if (only === 'memory') {
    Object.assign(results, await runMemory(redisUrl, upstreamUrl));
    return finish('memory');
  }
  if (only === 'console') {
    results.console = await consolePhase(redisUrl);
    return finish('console');
  }
  if (only === 'expiry') {
    results.expiry = await expiryPhase(redisUrl, Number(process.env.BENCH_EXPIRY_KEYS ?? (quick ? 100_000 : 1_000_000)));
    return finish('expiry');
  }

  // Keys: 10,000 for the Zipf mix (rate limits on but never reached), and a few with tiny limits.
  const unlimited = { requestsPerMinute: 1_000_000_000, requestsPerDay: 1_000_000_000 };
  const { keys } = await provision(redisUrl, quick ? 1_000 : 10_000, unlimited);
  const hot = keys[0]!;
  if (only === 'authz') {
    results.authz = await runAuthz(redisUrl, upstreamUrl, upstreamPort, hot);
    return finish('authz');
  }
  if (only === 'tokens') {
    results.tokens = await runTokens(redisUrl, upstreamUrl, [redisPort], hot);
    return finish('tokens');
  }
  const { keys: limited } = await provision(redisUrl, 50, { requestsPerMinute: 1, requestsPerDay: 1_000 });
  if (only === 'redis') {
    // `BENCH_ONLY=redis`: keygate alone, its Redis commands in the mixes and in steady state (a few minutes).
    const kg = await startKeygate(redisUrl, upstreamUrl);
    const mixes = mixesOf(keys, limited);
    for (const k of keys) await (await fetch(kg.url + PATH, { headers: { 'x-api-key': k } })).arrayBuffer(); // warm the cache
    const mixRedis: Record<string, Tally> = {};
    for (const [mix, mixKeys] of Object.entries(mixes)) {
      await load(kg.url, 2, {}, mixKeys);
      mixRedis[mix] = await countedLoad(kg, [redisPort], quick ? 3 : 5, {}, mixKeys);
    }
    results.redis = { mixes: mixRedis, steady: await redisSteadyState(kg, [redisPort], { 'x-api-key': hot }, mixes['zipf over 10,000 keys']!) };
    printRedis(results.redis as { mixes: Record<string, Tally>; steady: Record<string, Tally> });
    await stop(kg.proc);
    return finish('redis');
  }
  // The straightforward stack reads the same keys from its own records.
  await Promise.all(keys.map((k) => admin.set(`naive:key:${createHash('sha256').update(k).digest('hex')}`, JSON.stringify({ tenantId: 'ten_bench' }))));

  const baseline = async (name: string, file: string, env: Record<string, string> = {}): Promise<System> => {
    const port = await freePort();
    const proc = await startScript(join(here, 'systems', file), { PORT: String(port), UPSTREAM_URL: upstreamUrl, ...env }, true);
    return { name, url: `http://127.0.0.1:${port}`, proc };
  };
  const systems: System[] = [
    { name: 'direct upstream (floor)', url: upstreamUrl, proc: upstream },
    await baseline('ceiling: node:http + undici Pool, no auth', 'ceiling.ts'),
    await baseline('bare Node proxy, no auth', 'bare-proxy.ts'),
    await baseline('HPM on node:http, no auth', 'hpm-only.ts'),
    await baseline('Express + HPM, no auth', 'express-hpm.ts'),
    await baseline('straightforward (HPM + 2 Redis calls)', 'straightforward.ts', { REDIS_URL: redisUrl }),
  ];
  if (nginxInstalled) {
    const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-nginx-'));
    const port = await freePort();
    const conf = nginxConfig(dir, port, upstreamPort, keys);
    const proc = spawn(pinned ? 'taskset' : 'nginx', pinned ? ['-c', proxyCore, 'nginx', '-p', dir, '-c', conf] : ['-p', dir, '-c', conf], { stdio: 'inherit' });
    for (let i = 0; i < 100 && !(await fetch(`http://127.0.0.1:${port}${PATH}`).then((r) => r.status === 401, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
    systems.push({ name: 'nginx, static key map (1 worker)', url: `http://127.0.0.1:${port}`, proc });
  } else {
    results.nginx = 'not installed on this machine: the nginx baseline was skipped (apt-get install nginx-light)';
    console.log(results.nginx);
  }
  const kg = (await startKeygate(redisUrl, upstreamUrl)) as System & { opsUrl: string };
  systems.push(kg);
  const hotHeaders = { 'x-api-key': hot };

  // Warm-up: JIT, connection pools, and for keygate the hot key's cache entry and rate-limit leases.
  for (const sys of systems) await load(sys.url, 2, hotHeaders);

  // Maximum throughput, one hot key: REPEATS rounds over all systems, so a slow spell of the machine hits all.
  const runs = new Map<string, Array<LoadResult & { cpuUsPerRequest: number }>>(systems.map((s) => [s.name, []]));
  // INFO commandstats over the first round: every command Redis ran, those run inside scripts too, background
  // included (the steady-state figures below count what keygate sends, by cause).
  const calls = async () => [...(await admin.info('commandstats')).matchAll(/calls=(\d+)/g)].reduce((sum, x) => sum + Number(x[1]), 0);
  const redisPerRequest: Record<string, number> = {};
  for (let r = 0; r < REPEATS; r++) {
    for (const sys of systems) {
      // Every measured run follows its own warm-up: after a minute idle (while the others ran) V8 has shrunk the
      // heap, and the first seconds of load would measure its regrowth rather than the proxy.
      await load(sys.url, 2, hotHeaders);
      const before = r === 0 ? await calls() : 0;
      const m = await measure(sys, SECONDS, hotHeaders);
      if (r === 0 && (sys === kg || sys.name.startsWith('straightforward'))) redisPerRequest[sys.name] = round(((await calls()) - before - 1) / m.total, 3);
      runs.get(sys.name)!.push(m);
      console.log(`${sys.name}: ${m.rps} req/s, p99 ${m.p99} ms, ${m.cpuUsPerRequest} µs CPU/request, ${m.non2xx} errors`);
    }
  }
  results.redisCommandsPerRequest = redisPerRequest;
  // The systems with a fixed cost per request show how steady the machine was: a large spread across rounds
  // (a shared VM's neighbours) makes this run's ratios less reliable than usual.
  const spread = (xs: number[]) => round((Math.max(...xs) - Math.min(...xs)) / median(xs), 2);
  const steady = systems.filter((s) => s.name.startsWith('direct') || s.name.startsWith('nginx')).map((s) => {
    const rps = runs.get(s.name)!.map((x) => x.rps);
    return { name: s.name, rps, spread: spread(rps) };
  });
  results.machineSteadiness = steady;
  for (const s of steady) {
    const note = s.spread > 0.2 ? ' — the machine\'s speed varied during this run: compare with other runs before trusting its ratios' : '';
    console.log(`steadiness: ${s.name} ${s.rps.join(' / ')} req/s across rounds (spread ${Math.round(s.spread * 100)}%)${note}`);
  }
  const table: Row[] = systems.map((sys) => {
    const rs = runs.get(sys.name)!;
    const mid = (f: (x: (typeof rs)[number]) => number) => median(rs.map(f));
    return {
      name: sys.name, rps: mid((x) => x.rps), p50: mid((x) => x.p50), p99: mid((x) => x.p99), p999: mid((x) => x.p999), cpuUsPerRequest: mid((x) => x.cpuUsPerRequest),
      peakRssMb: Math.round(rssOf(sys.proc)), errors: rs.reduce((s, x) => s + x.non2xx, 0), runs: rs.map((x) => ({ rps: x.rps, p99: x.p99, cpuUsPerRequest: x.cpuUsPerRequest })), fixedRate: [],
    };
  });

  // Fixed offered rates: 25/50/75% of the slowest proxy's maximum, open loop, coordinated omission corrected.
  const slowest = Math.min(...table.filter((t) => !t.name.startsWith('direct') && !t.name.startsWith('nginx')).map((t) => t.rps));
  const rates = [0.25, 0.5, 0.75].map((f) => Math.round(slowest * f));
  for (const [i, sys] of systems.entries()) {
    for (const rate of rates) table[i]!.fixedRate.push(await openLoop(sys.url + PATH, rate, quick ? 2_000 : 5_000, () => hotHeaders));
  }

  // Mixes, keygate against the straightforward stack (the two that authenticate against Redis).
  const naive = systems.find((s) => s.name.startsWith('straightforward'))!;
  const mixes = mixesOf(keys, limited);
  const zipfKeys = mixes['zipf over 10,000 keys']!;
  for (const k of keys) await (await fetch(kg.url + PATH, { headers: { 'x-api-key': k } })).arrayBuffer(); // warm keygate's cache
  const mixResults: Record<string, unknown> = {};
  const redisPorts = [redisPort];
  const mixRedis: Record<string, Tally> = {};
  for (const [mix, mixKeys] of Object.entries(mixes)) {
    // Each system sees the mix's keys once before it is measured (as the throughput runs are warmed up): the
    // figures are the steady state, not the first sight of each key.
    await load(kg.url, 2, {}, mixKeys);
    let a!: Awaited<ReturnType<typeof measure>>;
    const t = await counted(redisPorts, async () => (a = await measure(kg, quick ? 3 : 5, {}, mixKeys)).total);
    mixRedis[mix] = { ...t, rps: a.rps, cpuUsPerRequest: a.cpuUsPerRequest };
    await load(naive.url, 2, {}, mixKeys);
    const b = await measure(naive, quick ? 3 : 5, {}, mixKeys);
    mixResults[mix] = { keygate: a, straightforward: b };
    console.log(`mix ${mix}: keygate ${a.rps} req/s (p99 ${a.p99} ms, ${a.cpuUsPerRequest} µs), straightforward ${b.rps} req/s (p99 ${b.p99} ms, ${b.cpuUsPerRequest} µs)`);
  }
  results.mixes = mixResults;
  results.redisCommandsPerRequest = redisPerRequest;
  results.redis = { mixes: mixRedis, steady: await redisSteadyState(kg, redisPorts, hotHeaders, zipfKeys) };

  results.websocket = { direct: await wsBench(upstreamUrl, {}), keygate: await wsBench(kg.url, hotHeaders) };
  console.log('websocket', results.websocket);

  for (const s of systems) if (s.proc !== upstream) await stop(s.proc);
  results.authz = await runAuthz(redisUrl, upstreamUrl, upstreamPort, hot);
  Object.assign(results, await runMemory(redisUrl, upstreamUrl));

  results.authDecisionOnCacheHit = await authMicro(quick ? 500_000 : 2_000_000);
  results.tokens = await runTokens(redisUrl, upstreamUrl, redisPorts, hot);
  results.systems = table;

  const row = (prefix: string) => table.find((t) => t.name.startsWith(prefix));
  const [ceiling, bare, express, straightforward, keygate, nginx] = [row('ceiling')!, row('bare')!, row('Express')!, row('straightforward')!, row('keygate')!, row('nginx')];
  const memory = results.memory as { peakRssMb?: number; idleRssMb?: number; heapBytesPerCachedKey?: number };
  const redisSteady = (results.redis as { steady: { hot: Tally; zipf: Tally } }).steady;
  const redisMax = Math.max(redisSteady.hot.perRequest, redisSteady.zipf.perRequest);
  const auth = results.authDecisionOnCacheHit as { opsPerSecond: number };
  const targets = [
    // Against the ceiling of a Node proxy built like keygate, and a sidecar's footprint.
    ['keygate ÷ ceiling (req/s)', round(keygate.rps / ceiling.rps, 2), '>= 0.9', keygate.rps >= 0.9 * ceiling.rps],
    ['keygate CPU per request − ceiling (µs)', round(keygate.cpuUsPerRequest - ceiling.cpuUsPerRequest), '<= +10', keygate.cpuUsPerRequest - ceiling.cpuUsPerRequest <= 10],
    ['p99 at saturation, keygate vs bare Node proxy (ms)', `${keygate.p99} vs ${bare.p99}`, 'no worse', keygate.p99 <= bare.p99],
    ['Redis commands per proxied request, sent by requests in steady state (hot key / Zipf; background apart, below)', `${redisSteady.hot.perRequest} / ${redisSteady.zipf.perRequest}`, '<= 0.01', redisMax <= 0.01],
    ['idle RSS: started, Redis connected, no traffic (MB)', memory.idleRssMb ?? 'n/a', '<= 80', (memory.idleRssMb ?? Infinity) <= 80],
    ['heap bytes per cached key', memory.heapBytesPerCachedKey ?? 'n/a', '<= 400', (memory.heapBytesPerCachedKey ?? Infinity) <= 400],
    ['keygate ÷ Express + HPM without auth (req/s)', round(keygate.rps / express.rps, 2), '>= 1.0', keygate.rps >= express.rps],
    ['keygate ÷ bare Node proxy (req/s)', round(keygate.rps / bare.rps, 2), '>= 0.8', keygate.rps >= 0.8 * bare.rps],
    ['keygate ÷ straightforward stack (req/s)', round(keygate.rps / straightforward.rps, 2), '>= 1.5', keygate.rps >= 1.5 * straightforward.rps],
    ['keygate CPU per request − bare proxy (µs)', round(keygate.cpuUsPerRequest - bare.cpuUsPerRequest), '<= +30', keygate.cpuUsPerRequest - bare.cpuUsPerRequest <= 30],
    ['p99 at saturation, keygate vs Express + HPM (ms)', `${keygate.p99} vs ${express.p99}`, 'no worse', keygate.p99 <= express.p99],
    ['auth decision on a cache hit (per second, one core)', auth.opsPerSecond, '>= 500,000', auth.opsPerSecond >= 500_000],
    ['peak RSS, 100,000 cached keys + 1,000 WebSockets (MB)', memory.peakRssMb ?? 'n/a', 'report (the chart limit is above it)', null],
    ['keygate ÷ nginx per core (req/s)', nginx ? round(keygate.rps / nginx.rps, 2) : 'n/a (nginx not installed)', 'report', null],
  ] as const;
  results.targets = targets.map(([figure, measured, target, holds]) => ({ figure, measured, target, holds }));

  console.log(`\n| system | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | peak RSS MB | ${rates.map((r) => `@${r}/s p50/p99/p99.9 ms`).join(' | ')} |`);
  console.log(`|---|---|---|---|---|---|---|${rates.map(() => '---|').join('')}`);
  for (const t of table) {
    const fixed = t.fixedRate.map((f) => `${f.p50.toFixed(2)} / ${f.p99.toFixed(2)} / ${f.p999.toFixed(2)}`);
    console.log(`| ${t.name} | ${t.rps} | ${t.p50} | ${t.p99} | ${t.p999} | ${t.cpuUsPerRequest} | ${t.peakRssMb} | ${fixed.join(' | ')} |`);
  }
  console.log('\n| figure | measured | target | holds? |\n|---|---|---|---|');
  for (const [figure, measured, target, holds] of targets) console.log(`| ${figure} | ${measured} | ${target} | ${holds === null ? '—' : holds ? 'yes' : 'no'} |`);
  console.log('\nauth decision on a cache hit', results.authDecisionOnCacheHit);
  console.log('redis commands per proxied request, INFO commandstats (in-script commands and background included), throughput run', results.redisCommandsPerRequest);
  printRedis(results.redis as { mixes: Record<string, Tally>; steady: Record<string, Tally> });

  await finish(null);
}

await main();
