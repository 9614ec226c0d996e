// `npm run bench`: every system under test on loopback, the same upstream and the same load, one table and
// one JSON file (bench/results/). See bench/README.md for what is measured and how to read it.
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { authMicro } from './auth-micro.ts';
import { cpuMicros, freePort, openLoop, peakRssMb, percentile, pinned, rssMb, startCommand, startScript, stop, zipf, type OpenLoopResult } from './lib.ts';
import { provision } from './provision.ts';

const here = import.meta.dirname;
const root = join(here, '..');
const DURATION = Number(process.env.BENCH_SECONDS ?? 8) * 1000;
const CONNECTIONS = 64;
const quick = process.env.BENCH_QUICK === '1';

interface SystemResult {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  cpuUsPerRequest: number;
  peakRssMb: number;
  errors: number;
  fixedRate: OpenLoopResult[];
}

interface System {
  name: string;
  url: string;
  pid: number;
  proc: ChildProcess;
  headers: () => Record<string, string>;
}

async function maxThroughput(sys: System, headers: () => Record<string, string>, duration = DURATION) {
  const before = cpuMicros(sys.pid);
  const result = await autocannon({
    url: `${sys.url}/v1/calls/1`,
    connections: CONNECTIONS,
    duration: duration / 1000,
    requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, ...headers() } }) }],
  });
  const cpu = cpuMicros(sys.pid) - before;
  const total = result.requests.total;
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    p999: result.latency.p99_9,
    cpuUsPerRequest: Math.round((cpu / Math.max(1, total)) * 10) / 10,
    non2xx: result.non2xx + result.errors,
    total,
  };
}

let kgOpsPort = 0;

async function main(): Promise<void> {
  const results: Record<string, unknown> = { startedAt: new Date().toISOString(), pinnedToOneCore: pinned, durationSeconds: DURATION / 1000, connections: CONNECTIONS };
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  await new Promise((r) => setTimeout(r, 300));
  const admin = new Redis(redisUrl);
  const upstreamPort = await freePort();
  const upstream = await startScript(join(here, 'systems/upstream.ts'), { PORT: String(upstreamPort) }, false);
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;

  // Keys: 10,000 for the Zipf mix (rate limits on but never reached), and a few with tiny limits.
  const unlimited = { requestsPerMinute: 1_000_000_000, requestsPerDay: 1_000_000_000 };
  const { keys } = await provision(redisUrl, quick ? 1_000 : 10_000, unlimited);
  const hot = keys[0]!;
  const { keys: limited } = await provision(redisUrl, 50, { requestsPerMinute: 1, requestsPerDay: 1_000 });
  // The straightforward stack reads the same keys from its own records.
  const { createHash } = await import('node:crypto');
  await Promise.all(keys.map((k) => admin.set(`naive:key:${createHash('sha256').update(k).digest('hex')}`, JSON.stringify({ tenantId: 'ten_bench' }))));

  /** A baseline system script on the proxy core, forwarding to the shared upstream. */
  const baseline = (name: string, file: string, env: Record<string, string> = {}) => ({
    name,
    start: async () => {
      const port = await freePort();
      const proc = await startScript(join(here, 'systems', file), { PORT: String(port), UPSTREAM_URL: upstreamUrl, ...env }, true);
      return { proc, url: `http://127.0.0.1:${port}` };
    },
  });
  const systems: Array<{ name: string; start: () => Promise<{ proc: ChildProcess; url: string }> }> = [
    { name: 'direct upstream (floor)', start: async () => ({ proc: upstream, url: upstreamUrl }) },
    baseline('bare Node proxy, no auth', 'bare-proxy.ts'),
    baseline('HPM on node:http, no auth', 'hpm-only.ts'),
    baseline('Express + HPM, no auth', 'express-hpm.ts'),
    baseline('straightforward (HPM + 2 Redis calls)', 'straightforward.ts', { REDIS_URL: redisUrl }),
    {
      name: 'keygate (cache, limits, metrics, logs)',
      start: async () => {
        const [port, opsPort] = [await freePort(), await freePort()];
        kgOpsPort = opsPort;
        const { proc } = await startCommand(process.execPath, [join(root, 'dist/server/cli.js'), 'serve'], {
          PORT: String(port), OPS_PORT: String(opsPort), HOST: '127.0.0.1', UPSTREAM_URL: upstreamUrl, REDIS_URL: redisUrl,
          KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'info', KEYGATE_POLICY: join(here, 'policy.yaml'),
          // Each mix is measured on its own: the invalid-key mix must not leave 127.0.0.1 blocked for the next.
          KEYGATE_CONFIG: join(here, 'keygate.yaml'),
        }, true, /keygate listening/);
        return { proc, url: `http://127.0.0.1:${port}` };
      },
    },
  ];
  if (spawnSync('nginx', ['-v']).status === 0) {
    console.log('nginx found, but its baseline is not wired in this harness yet');
  } else {
    results.nginx = 'not installed on this machine: the nginx baseline was skipped';
  }

  const table: SystemResult[] = [];
  const started: System[] = [];
  const hotHeaders = () => ({ 'x-api-key': hot });
  for (const s of systems) {
    const { proc, url } = await s.start();
    const sys: System = { name: s.name, url, pid: proc.pid!, proc, headers: hotHeaders };
    started.push(sys);
    // Warm-up: JIT, connection pools, and for keygate the hot key's cache entry.
    await maxThroughput(sys, hotHeaders, 2_000);
    const redisBefore = await admin.info('commandstats');
    const m = await maxThroughput(sys, hotHeaders);
    const redisAfter = await admin.info('commandstats');
    const calls = (info: string) => [...info.matchAll(/calls=(\d+)/g)].reduce((sum, x) => sum + Number(x[1]), 0);
    if (s.name.startsWith('keygate') || s.name.startsWith('straightforward')) {
      (results.redisCommandsPerRequest ??= {} as Record<string, number>);
      (results.redisCommandsPerRequest as Record<string, number>)[s.name] = Math.round(((calls(redisAfter) - calls(redisBefore) - 1) / m.total) * 100) / 100;
    }
    table.push({ name: s.name, rps: m.rps, p50: m.p50, p99: m.p99, p999: m.p999, cpuUsPerRequest: m.cpuUsPerRequest, peakRssMb: Math.round(peakRssMb(sys.pid)), errors: m.non2xx, fixedRate: [] });
    console.log(`${s.name}: ${m.rps} req/s, p99 ${m.p99} ms, ${m.cpuUsPerRequest} µs CPU/request, ${m.non2xx} non-2xx`);
  }

  // Fixed offered rates: 25/50/75% of the slowest system's maximum, open loop, coordinated omission corrected.
  const slowest = Math.min(...table.filter((t) => !t.name.startsWith('direct')).map((t) => t.rps));
  const rates = [0.25, 0.5, 0.75].map((f) => Math.round(slowest * f));
  for (const [i, sys] of started.entries()) {
    for (const rate of rates) table[i]!.fixedRate.push(await openLoop(`${sys.url}/v1/calls/1`, rate, quick ? 2_000 : 5_000, hotHeaders));
  }

  // Mixes, keygate against the straightforward stack (the two that authenticate).
  const kg = started.find((s) => s.name.startsWith('keygate'))!;
  const naive = started.find((s) => s.name.startsWith('straightforward'))!;
  const pick = zipf(keys.length);
  const invalid = keys.map((k) => `${k.slice(0, 10)}${k.slice(11)}x`); // right shape, wrong checksum
  const mixes: Record<string, () => Record<string, string>> = {
    'hot key': hotHeaders,
    'zipf over 10,000 keys': () => ({ 'x-api-key': keys[pick()]! }),
    'invalid keys': () => ({ 'x-api-key': invalid[pick()]! }),
    'over-limit keys': () => ({ 'x-api-key': limited[Math.floor(Math.random() * limited.length)]! }),
  };
  for (const k of keys) await (await fetch(`${kg.url}/v1/calls/1`, { headers: { 'x-api-key': k } })).arrayBuffer(); // warm keygate's cache
  const mixResults: Record<string, unknown> = {};
  for (const [mix, headers] of Object.entries(mixes)) {
    const a = await maxThroughput(kg, headers, quick ? 3_000 : 5_000);
    const b = await maxThroughput(naive, headers, quick ? 3_000 : 5_000);
    mixResults[mix] = { keygate: a, straightforward: b };
    console.log(`mix ${mix}: keygate ${a.rps} req/s (p99 ${a.p99} ms), straightforward ${b.rps} req/s (p99 ${b.p99} ms)`);
  }
  results.mixes = mixResults;

  // WebSocket sessions: connect rate and frame round-trip latency, through keygate and direct.
  const wsBench = async (base: string, headers: Record<string, string>) => {
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
    const frame = Buffer.alloc(320, 1); // 20 ms of 8 kHz 16-bit audio
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
    return { connectsPerSecond, frameRttP50Ms: Math.round(percentile(rtts, 50) * 1000) / 1000, frameRttP99Ms: Math.round(percentile(rtts, 99) * 1000) / 1000 };
  };
  results.websocket = { direct: await wsBench(upstreamUrl, {}), keygate: await wsBench(kg.url, { 'x-api-key': hot }) };
  console.log('websocket', results.websocket);

  // Memory: 100,000 cached keys and 1,000 open WebSocket sessions in one keygate process.
  const big = quick ? 10_000 : 100_000;
  const { keys: many } = await provision(redisUrl, big, unlimited);
  const agentUrl = kg.url;
  const touch = async (k: string): Promise<void> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await (await fetch(`${agentUrl}/v1/calls/1`, { headers: { 'x-api-key': k } })).arrayBuffer();
        return;
      } catch {
        // a keep-alive connection closed under us; try again
      }
    }
  };
  // Moderate concurrency: this phase measures memory at rest with a full cache, not behaviour under overload.
  for (let i = 0; i < many.length && kg.proc.exitCode === null; i += 32) await Promise.all(many.slice(i, i + 32).map(touch));
  if (kg.proc.exitCode !== null) {
    results.memory = `keygate exited (${kg.proc.exitCode ?? kg.proc.signalCode}) while caching ${big} keys`;
    console.log(results.memory);
  }
  const sessions: WebSocket[] = [];
  for (let i = 0; i < 1_000 && kg.proc.exitCode === null; i += 100) {
    await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${agentUrl.replace('http', 'ws')}/v1/voice/a/stream`, { headers: { 'x-api-key': hot } });
      sessions.push(ws);
      ws.once('open', () => resolve());
      ws.once('error', reject);
    })));
  }
  if (kg.proc.exitCode === null) {
    const metricsText = await (await fetch(`${kg.url.replace(/:\d+$/, `:${kgOpsPort}`)}/metrics`)).text();
    const cached = Number(/^keygate_key_cache_entries (\d+)/m.exec(metricsText)?.[1]);
    results.memory = { cachedKeys: cached, openWebSockets: sessions.length, rssMb: Math.round(rssMb(kg.pid)), peakRssMb: Math.round(peakRssMb(kg.pid)) };
    console.log('memory', results.memory);
  }
  for (const ws of sessions) ws.terminate();

  results.authDecisionOnCacheHit = await authMicro(quick ? 500_000 : 2_000_000);
  results.systems = table;

  const bare = table.find((t) => t.name.startsWith('bare'))!;
  const express = table.find((t) => t.name.startsWith('Express'))!;
  const straightforward = table.find((t) => t.name.startsWith('straightforward'))!;
  const keygate = table.find((t) => t.name.startsWith('keygate'))!;
  results.ratios = {
    keygateVsExpressHpm: Math.round((keygate.rps / express.rps) * 100) / 100,
    keygateVsBareProxy: Math.round((keygate.rps / bare.rps) * 100) / 100,
    keygateVsStraightforward: Math.round((keygate.rps / straightforward.rps) * 100) / 100,
    keygateCpuOverBareUs: Math.round((keygate.cpuUsPerRequest - bare.cpuUsPerRequest) * 10) / 10,
    keygateP99VsExpressP99: `${keygate.p99} ms vs ${express.p99} ms`,
    nginx: typeof results.nginx === 'string' ? 'n/a (nginx not installed)' : results.nginx,
  };

  console.log('\n| system | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | peak RSS MB | ' + rates.map((r) => `@${r}/s p50/p99/p99.9 ms`).join(' | ') + ' |');
  console.log('|---|---|---|---|---|---|---|' + rates.map(() => '---|').join(''));
  for (const t of table) {
    const fixed = t.fixedRate.map((f) => `${f.p50.toFixed(2)} / ${f.p99.toFixed(2)} / ${f.p999.toFixed(2)}`);
    console.log(`| ${t.name} | ${t.rps} | ${t.p50} | ${t.p99} | ${t.p999} | ${t.cpuUsPerRequest} | ${t.peakRssMb} | ${fixed.join(' | ')} |`);
  }
  console.log('\nratios', results.ratios);
  console.log('auth decision on a cache hit', results.authDecisionOnCacheHit);
  console.log('redis commands per proxied request', results.redisCommandsPerRequest);

  mkdirSync(join(here, 'results'), { recursive: true });
  const file = join(here, 'results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nwrote ${file}`);

  for (const s of started) if (s.proc !== upstream) await stop(s.proc);
  await stop(upstream);
  admin.disconnect();
  redis.kill('SIGKILL');
}

await main();
