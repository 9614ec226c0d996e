// `npm run bench:profile`: where keygate's CPU goes per proxied request (issue 18). keygate runs with its image's
// flags plus --cpu-prof, on one core, under the same closed-loop load as `npm run bench` (one hot key, cached,
// rate limits, policy, metrics and the access log on); the profile's self time is summed per source file of
// keygate and per library, and divided by the requests served. Prints a table for bench/README.md.
// `BENCH_PROFILE=ceiling` profiles the ceiling (bench/systems/ceiling.ts) the same way, to compare bucket by bucket.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, otherCores, pinned, startCommand, startScript, stop } from './lib.ts';
import { provision } from './provision.ts';
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

async function main(): Promise<void> {
  if (!wrkInstalled) throw new Error('bench:profile needs wrk (apt-get install wrk)');
  const redisPort = await freePort();
  const redis = await startCommand('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'], {}, false, /Ready to accept connections/);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const upstreamPort = await freePort();
  const upstream = await startScript(join(here, 'systems/upstream.ts'), { PORT: String(upstreamPort) }, false);
  const { keys } = await provision(redisUrl, 10, { requestsPerMinute: 1_000_000_000, requestsPerDay: 1_000_000_000 });
  const dir = mkdtempSync(join(tmpdir(), 'keygate-profile-'));
  const [port, opsPort] = [await freePort(), await freePort()];
  const profiled = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const proc = process.env.BENCH_PROFILE === 'ceiling'
    ? await startScript(join(here, 'systems/ceiling.ts'), { PORT: String(port), UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}` }, true, [...flags, ...profiled])
    : (await startCommand(process.execPath, [...flags, ...profiled, join(root, 'dist/server/cli.js'), 'serve'], {
        PORT: String(port), OPS_PORT: String(opsPort), HOST: '127.0.0.1', UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`, REDIS_URL: redisUrl,
        KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', LOG_LEVEL: 'info', KEYGATE_POLICY: join(here, 'policy.yaml'), KEYGATE_CONFIG: join(here, 'keygate.yaml'),
      }, true, /keygate listening/, join(dir, 'keygate.log'))).proc;
  const url = `http://127.0.0.1:${port}/v1/calls/1`;
  const headers = { 'x-api-key': keys[0]! };
  const loadFrom = Number(process.hrtime.bigint() / 1000n);
  const warm = await wrk(url, { connections: 64, seconds: 3, headers, cpus: pinned ? otherCores : undefined });
  const run = await wrk(url, { connections: 64, seconds: SECONDS, headers, cpus: pinned ? otherCores : undefined });
  const loadTo = Number(process.hrtime.bigint() / 1000n);
  await stop(proc); // the profile is written as the process exits
  await stop(upstream);
  redis.proc.kill('SIGKILL');

  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written');
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // --cpu-prof covers the whole process: start-up (configuration, the OpenAPI document) and shutdown too. Only
  // the load counts: V8's profile clock is the monotonic clock process.hrtime reads here (µs), so the samples
  // taken between the start of the warm-up and the end of the measured run are the load's.
  const at: number[] = [];
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    at.push(t);
  }
  const loaded = (us: number) => us >= loadFrom && us <= loadTo;
  const selfUs = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    if (!loaded(at[i]!)) continue;
    const bucket = bucketOf(byId.get(profile.samples[i]!)!);
    selfUs.set(bucket, (selfUs.get(bucket) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  // The window spans the warm-up and the measured run: its time is divided by the requests of both.
  const busy = [...selfUs.entries()].filter(([b]) => b !== '(idle)');
  const total = busy.reduce((s, [, us]) => s + us, 0);
  const requests = warm.total + run.total;
  console.log(`${run.rps} req/s over ${SECONDS} s; ${requests} requests profiled, ${Math.round(total / 1000)} ms busy (${(total / requests).toFixed(1)} µs per request)`);
  console.log('\n| where | µs per request | share |\n|---|---|---|');
  const rows = busy.sort((a, b) => b[1] - a[1]);
  let keygateOwn = 0;
  for (const [bucket, us] of rows) {
    if (bucket.startsWith('keygate:')) keygateOwn += us;
    if (us / total < 0.005) continue;
    console.log(`| ${bucket} | ${(us / requests).toFixed(2)} | ${((100 * us) / total).toFixed(1)}% |`);
  }
  console.log(`| keygate's own code, all files | ${(keygateOwn / requests).toFixed(2)} | ${((100 * keygateOwn) / total).toFixed(1)}% |`);
  // BENCH_PROFILE_FUNCTIONS=n: the n functions with the most self time, to see inside a bucket.
  const topN = Number(process.env.BENCH_PROFILE_FUNCTIONS ?? 0);
  if (topN > 0) {
    const perFn = new Map<string, number>();
    for (let i = 0; i < profile.samples.length; i++) {
      if (!loaded(at[i]!)) continue;
      const { functionName, url } = byId.get(profile.samples[i]!)!.callFrame;
      const name = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}`;
      perFn.set(name, (perFn.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
    }
    console.log(`\n| function | µs per request |\n|---|---|`);
    for (const [name, us] of [...perFn].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, topN)) console.log(`| ${name} | ${(us / requests).toFixed(2)} |`);
  }
}

await main();
