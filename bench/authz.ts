// keygate as a gateway's authorizer (docs/gateways/): how many authorization decisions one core answers,
// and nginx + keygate's authorizer against keygate as the proxy, on the same machine, in the same run.
//
// - Decisions per second: wrk straight at the authorizer's /forward-auth (the check Traefik and Caddy send:
//   X-Forwarded-Method/-Uri and the key), keygate pinned to the proxy core. Each answer is a full decision on the
//   original request: canonical target, key, route policy, rate limits, usage, metrics, access log.
// - nginx + authorizer against keygate inline: nginx (one worker) with docs/gateways/nginx.conf as it stands, in
//   front of the same upstream, asking the same keygate process, both pinned to the proxy core; against that
//   keygate proxying by itself. Rounds alternate the two (a slow spell of the machine hits both); medians.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docsConfig } from '../test/helpers/gateways.ts';
import { cpuMicros, freePort, pinned, processTree, proxyCore, stop } from './lib.ts';
import type { LoadResult } from './wrk.ts';

export interface AuthzRun extends LoadResult {
  cpuUsPerRequest: number;
}

export interface AuthzResults {
  decisionsPerSecond: AuthzRun;
  inline: AuthzRun;
  nginxAuthorizer: AuthzRun;
  rounds: Array<{ inline: AuthzRun; nginxAuthorizer: AuthzRun }>;
}

type Load = (url: string, seconds: number, headers: Record<string, string>) => Promise<LoadResult>;

const cpuOf = (pids: number[]) => pids.flatMap(processTree).reduce((sum, pid) => sum + cpuMicros(pid), 0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** nginx, one worker, docs/gateways/nginx.conf included, on the proxy core; resolves once it answers. */
async function startNginx(authzPort: number, upstreamPort: number): Promise<{ url: string; proc: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-authz-nginx-'));
  for (const d of ['logs', 'tmp']) mkdirSync(join(dir, d));
  const listen = await freePort();
  writeFileSync(join(dir, 'keygate.conf'), docsConfig('nginx.conf', { authz: authzPort, upstream: upstreamPort, listen }));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/logs/error.log warn;\nevents { worker_connections 4096; }\n` +
      `http {\n  access_log off;\n  client_body_temp_path ${dir}/tmp/body;\n  proxy_temp_path ${dir}/tmp/proxy;\n  fastcgi_temp_path ${dir}/tmp/fastcgi;\n` +
      `  uwsgi_temp_path ${dir}/tmp/uwsgi;\n  scgi_temp_path ${dir}/tmp/scgi;\n  include ${dir}/keygate.conf;\n}\n`,
  );
  const proc = spawn(pinned ? 'taskset' : 'nginx', pinned ? ['-c', proxyCore, 'nginx', '-p', dir, '-c', conf] : ['-p', dir, '-c', conf], { stdio: 'inherit' });
  const url = `http://127.0.0.1:${listen}`;
  for (let i = 0; i < 100 && !(await fetch(`${url}/`).then((r) => r.status === 401, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
  return { url, proc };
}

/**
 * `kg`: a keygate process (pinned to the proxy core) with its authorizer listener on `authzPort`, trusting
 * loopback; `load`: the harness's closed-loop load (wrk when installed) of `url + path`.
 */
export async function authzBench(opts: {
  kg: { url: string; proc: ChildProcess };
  authzPort: number;
  upstreamPort: number;
  key: string;
  path: string;
  seconds: number;
  repeats: number;
  load: Load;
  decisionLoad: (url: string, seconds: number, headers: Record<string, string>) => Promise<LoadResult>;
}): Promise<AuthzResults> {
  const { kg, key, path, seconds, load } = opts;
  const measure = async (pids: number[], run: () => Promise<LoadResult>): Promise<AuthzRun> => {
    const before = cpuOf(pids);
    const r = await run();
    return { ...r, cpuUsPerRequest: Math.round(((cpuOf(pids) - before) / Math.max(1, r.total)) * 10) / 10 };
  };

  // Decisions per second: the authorizer alone.
  const authzUrl = `http://127.0.0.1:${opts.authzPort}/forward-auth`;
  const check = { 'x-api-key': key, 'x-forwarded-method': 'GET', 'x-forwarded-uri': path };
  await opts.decisionLoad(authzUrl, 2, check);
  const decisions: AuthzRun[] = [];
  for (let r = 0; r < opts.repeats; r++) decisions.push(await measure([kg.proc.pid!], () => opts.decisionLoad(authzUrl, seconds, check)));

  // nginx + authorizer against keygate inline.
  const nginx = await startNginx(opts.authzPort, opts.upstreamPort);
  try {
    const headers = { 'x-api-key': key };
    await load(nginx.url, 2, headers);
    await load(kg.url, 2, headers);
    const rounds: AuthzResults['rounds'] = [];
    for (let r = 0; r < opts.repeats; r++) {
      await load(kg.url, 2, headers);
      const inline = await measure([kg.proc.pid!], () => load(kg.url, seconds, headers));
      await load(nginx.url, 2, headers);
      const nginxAuthorizer = await measure([kg.proc.pid!, nginx.proc.pid!], () => load(nginx.url, seconds, headers));
      rounds.push({ inline, nginxAuthorizer });
      console.log(`authz round ${r + 1}: keygate inline ${inline.rps} req/s (${inline.cpuUsPerRequest} µs CPU), nginx + keygate authorizer ${nginxAuthorizer.rps} req/s (${nginxAuthorizer.cpuUsPerRequest} µs CPU)`);
    }
    const mid = (runs: AuthzRun[]): AuthzRun => {
      const m = (f: (x: AuthzRun) => number) => median(runs.map(f));
      return { rps: m((x) => x.rps), p50: m((x) => x.p50), p99: m((x) => x.p99), p999: m((x) => x.p999), total: m((x) => x.total), non2xx: runs.reduce((s, x) => s + x.non2xx, 0), cpuUsPerRequest: m((x) => x.cpuUsPerRequest) };
    };
    return { decisionsPerSecond: mid(decisions), inline: mid(rounds.map((x) => x.inline)), nginxAuthorizer: mid(rounds.map((x) => x.nginxAuthorizer)), rounds };
  } finally {
    await stop(nginx.proc);
  }
}

