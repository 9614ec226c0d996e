// `npm run bench:profile`: where keygate's CPU goes per proxied request. keygate runs with its image's
// flags plus --cpu-prof, on one core, under the same closed-loop load as `npm run bench` (one hot key, cached,
// rate limits, policy, metrics and the access log on); the profile's self time is summed per source file of
// keygate and per library, and divided by the requests served. Prints a table for bench/README.md.
// `BENCH_PROFILE=ceiling` profiles the ceiling (bench/systems/ceiling.ts) the same way; `BENCH_PROFILE=compare`
// profiles both, one after the other, and prints where keygate's CPU per request exceeds the ceiling's, by bucket
// and (BENCH_PROFILE_FUNCTIONS=n) by function: the profile behind the CPU target.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, otherCores, pinned, startCommand, startScript, stop } from './lib.ts';
import { startBackends } from './backends.ts';
import { wrk, wrkInstalled } from './wrk.ts';

const here = import.meta.dirname;
const root = join(here, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const dockerCmd = JSON.parse(/^CMD (\[.*\])$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))![1]!) as string[];
const flags = dockerCmd.slice(1).filter((a) => a.startsWith('--'));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's time is counted: a keygate file, a library, Node's own code, or V8's (GC, idle, program). */
function bucketOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const lib = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (lib) return lib[1]!;
  const own = /\/dist\/(.+)\.js$/.exec(url);
  if (own) return `keygate: src/${own[1]}.ts`;
  // Node's internals by area (node:internal/crypto, node:internal/streams, …).
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/').slice(0, url.startsWith('node:internal/') ? 2 : 1).join('/')}`;
  return url;
}

interface Measured {
  rps: number;
  requests: number;
  /** µs of self time per request, by bucket (bucketOf) and by function. */
  buckets: Map<string, number>;
  functions: Map<string, number>;
}

/** Runs one system under the load with --cpu-prof, and divides the load window's self time by its requests. */
async function profileSystem(system: 'keygate' | 'ceiling', redisUrl: string, upstreamUrl: string, key: string): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-profile-'));
  const [port, opsPort] = [await freePort(), await freePort()];
  const profiled = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const proc = system === 'ceiling'
    ? await startScript(join(here, 'systems/ceiling.ts'), { PORT: String(port), UPSTREAM_URL: upstreamUrl }, true, [...flags, ...profiled])
    : (await startCommand(process.execPath, [...flags, ...profiled, join(root, 'dist/server/cli.js'), 'serve'], {
        PORT: String(port), OPS_PORT: String(opsPort), HOST: '127.0.0.1', UPSTREAM_URL: upstreamUrl, REDIS_URL: redisUrl,
        KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'info', KEYGATE_POLICY: join(here, 'policy.yaml'), KEYGATE_CONFIG: join(here, 'keygate.yaml'),
      }, true, /keygate listening/, join(dir, 'keygate.log'))).proc;
  const url = `http://127.0.0.1:${port}/v1/calls/1`;
  const headers = { 'x-api-key': key };
  const loadFrom = Number(process.hrtime.bigint() / 1000n);
  const warm = await wrk(url, { connections: 64, seconds: 3, headers, cpus: pinned ? otherCores : undefined });
  const run = await wrk(url, { connections: 64, seconds: SECONDS, headers, cpus: pinned ? otherCores : undefined });
  const loadTo = Number(process.hrtime.bigint() / 1000n);
  await stop(proc); // the profile is written as the process exits

  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written');
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // --cpu-prof covers the whole process: start-up (configuration, the OpenAPI document) and shutdown too. Only
  // the load counts: V8's profile clock is the monotonic clock process.hrtime reads here (µs), so the samples
  // taken between the start of the warm-up and the end of the measured run are the load's. Their time is
  // divided by the requests of both.
  const requests = warm.total + run.total;
  const buckets = new Map<string, number>();
  const functions = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us / requests);
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < loadFrom || t > loadTo) continue;
    const node = byId.get(profile.samples[i]!)!;
    const bucket = bucketOf(node);
    if (bucket === '(idle)') continue;
    add(buckets, bucket, delta);
    const { functionName, url: src } = node.callFrame;
    add(functions, `${functionName || '(anonymous)'} ${src.replace(/^.*\/(node_modules|dist)\//, '$1/')}`, delta);
  }
  return { rps: run.rps, requests, buckets, functions };
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);

function print(m: Measured): void {
  const total = sum(m.buckets);
  console.log(`${m.rps} req/s over ${SECONDS} s; ${m.requests} requests profiled (${total.toFixed(1)} µs per request)`);
  console.log('\n| where | µs per request | share |\n|---|---|---|');
  let keygateOwn = 0;
  for (const [bucket, us] of sorted(m.buckets)) {
    if (bucket.startsWith('keygate:')) keygateOwn += us;
    if (us / total >= 0.005) console.log(`| ${bucket} | ${us.toFixed(2)} | ${((100 * us) / total).toFixed(1)}% |`);
  }
  console.log(`| keygate's own code, all files | ${keygateOwn.toFixed(2)} | ${((100 * keygateOwn) / total).toFixed(1)}% |`);
  // BENCH_PROFILE_FUNCTIONS=n: the n functions with the most self time, to see inside a bucket.
  const topN = Number(process.env.BENCH_PROFILE_FUNCTIONS ?? 0);
  if (topN > 0) {
    console.log('\n| function | µs per request |\n|---|---|');
    for (const [name, us] of sorted(m.functions).slice(0, topN)) console.log(`| ${name} | ${us.toFixed(2)} |`);
  }
}

/** keygate's µs per request beyond the ceiling's, per row, largest first; rows under 0.1 µs either way folded. */
function printDifference(title: string, kg: Map<string, number>, ceiling: Map<string, number>, rows: number): void {
  const diff = new Map<string, number>();
  for (const k of new Set([...kg.keys(), ...ceiling.keys()])) diff.set(k, (kg.get(k) ?? 0) - (ceiling.get(k) ?? 0));
  console.log(`\n| ${title} | keygate | ceiling | difference |\n|---|---|---|---|`);
  let rest = 0;
  for (const [k, d] of sorted(diff)) {
    if (Math.abs(d) < 0.1 || rows-- <= 0) {
      rest += d;
      continue;
    }
    console.log(`| ${k} | ${(kg.get(k) ?? 0).toFixed(2)} | ${(ceiling.get(k) ?? 0).toFixed(2)} | ${d >= 0 ? '+' : ''}${d.toFixed(2)} |`);
  }
  console.log(`| everything else | | | ${rest >= 0 ? '+' : ''}${rest.toFixed(2)} |`);
  console.log(`| total | ${sum(kg).toFixed(2)} | ${sum(ceiling).toFixed(2)} | ${(sum(kg) - sum(ceiling)) >= 0 ? '+' : ''}${(sum(kg) - sum(ceiling)).toFixed(2)} |`);
}

async function main(): Promise<void> {
  if (!wrkInstalled) throw new Error('bench:profile needs wrk (apt-get install wrk)');
  const { redisUrl, upstreamUrl, keys, stop: stopBackends } = await startBackends();
  const mode = process.env.BENCH_PROFILE ?? 'keygate';
  try {
    if (mode === 'compare') {
      const ceiling = await profileSystem('ceiling', redisUrl, upstreamUrl, keys[0]!);
      const kg = await profileSystem('keygate', redisUrl, upstreamUrl, keys[0]!);
      console.log(`ceiling: ${ceiling.rps} req/s, ${sum(ceiling.buckets).toFixed(1)} µs per request; keygate: ${kg.rps} req/s, ${sum(kg.buckets).toFixed(1)} µs per request`);
      printDifference('where', kg.buckets, ceiling.buckets, 40);
      const topN = Number(process.env.BENCH_PROFILE_FUNCTIONS ?? 0);
      if (topN > 0) printDifference('function', kg.functions, ceiling.functions, topN);
    } else {
      print(await profileSystem(mode === 'ceiling' ? 'ceiling' : 'keygate', redisUrl, upstreamUrl, keys[0]!));
    }
  } finally {
    await stopBackends();
  }
}

await main();
