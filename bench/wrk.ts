// Load from wrk (C, event-driven: it costs the machine far less per request than a Node load generator, so the
// proxy, not the generator, is what saturates). Used whenever `wrk` is on PATH; autocannon otherwise.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const wrkInstalled = spawnSync('wrk', ['--version']).error === undefined;

export interface LoadResult {
  rps: number;
  /** Latency percentiles in ms. */
  p50: number;
  p99: number;
  p999: number;
  total: number;
  /** Non-2xx answers plus socket errors. */
  non2xx: number;
}

/**
 * A Lua script for wrk: each request takes the next key of `keys` (a pre-drawn sequence, so a Zipf mix needs no
 * sampling inside wrk) and `done` prints the figures as one JSON line.
 */
function script(keys: string[] | null): string {
  const lines = [];
  if (keys) {
    lines.push(`local keys = {${keys.map((k) => `"${k}"`).join(',')}}`, 'local n = 0');
    lines.push('request = function() n = n % #keys + 1; return wrk.format(nil, nil, {["x-api-key"] = keys[n]}) end');
  }
  lines.push(
    'done = function(s, latency, requests)',
    '  local e = s.errors',
    '  io.write(string.format("WRKJSON {\\"requests\\":%d,\\"us\\":%d,\\"p50\\":%d,\\"p99\\":%d,\\"p999\\":%d,\\"errors\\":%d}\\n",',
    '    s.requests, s.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),',
    '    e.connect + e.read + e.write + e.status + e.timeout))',
    'end',
  );
  return lines.join('\n');
}

const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-wrk-'));
let scripts = 0;

/** Closed-loop load: `connections` connections, each sending its next request when the previous answer is in. */
export function wrk(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string>; keys?: string[]; cpus?: string }): Promise<LoadResult> {
  const file = join(dir, `s${scripts++}.lua`);
  writeFileSync(file, script(opts.keys ?? null));
  const args = ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--timeout', '10s', '-s', file];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const [cmd, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, 'wrk', ...args]] : ['wrk', args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const m = /WRKJSON (\{.*\})/.exec(out);
      if (code !== 0 || !m) return reject(new Error(`wrk exited ${code}: ${out}`));
      const r = JSON.parse(m[1]!) as { requests: number; us: number; p50: number; p99: number; p999: number; errors: number };
      resolve({ rps: Math.round(r.requests / (r.us / 1e6)), p50: r.p50 / 1000, p99: r.p99 / 1000, p999: r.p999 / 1000, total: r.requests, non2xx: r.errors });
    });
  });
}
