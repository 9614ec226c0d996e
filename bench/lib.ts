import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism } from 'node:os';

export const CLK_TCK = 100;

// One free-port helper for tests and benchmarks.
export { freePort } from '../test/helpers/ports.ts';

/** Pins the system under test to the last core and everything else to the others (when there are two). */
export const pinned = availableParallelism() > 1;
export const proxyCore = String(availableParallelism() - 1);
export const otherCores = `0-${availableParallelism() - 2}`;
if (pinned) spawn('taskset', ['-cp', otherCores, String(process.pid)], { stdio: 'ignore' });

/** Starts a TypeScript system script (Node 24 strips the types) and waits for its 'ready' message. */
export async function startScript(file: string, env: Record<string, string>, onProxyCore: boolean, execArgv: string[] = []): Promise<ChildProcess> {
  const child = fork(file, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...execArgv] });
  if (pinned) spawn('taskset', ['-cp', onProxyCore ? proxyCore : otherCores, String(child.pid)], { stdio: 'ignore' });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
  return child;
}

/**
 * Starts a command and resolves once `readyLine` appears in its output: read from the pipe, or — with `logFile` —
 * from the file its stdout and stderr go to (polled), so nothing reads its output while it is being measured.
 */
export function startCommand(cmd: string, args: string[], env: Record<string, string>, onProxyCore: boolean, readyLine: RegExp, logFile?: string): Promise<{ proc: ChildProcess; output: () => string }> {
  const full = pinned ? ['taskset', ['-c', onProxyCore ? proxyCore : otherCores, cmd, ...args]] as const : [cmd, args] as const;
  if (logFile) {
    const fd = openSync(logFile, 'w');
    const proc = spawn(full[0], [...full[1]], { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const output = () => readFileSync(logFile, 'utf8');
    return new Promise((resolve, reject) => {
      let ready = false;
      const poll = setInterval(() => {
        if (!readyLine.test(output())) return;
        clearInterval(poll);
        ready = true;
        resolve({ proc, output });
      }, 50);
      proc.once('exit', (code) => {
        clearInterval(poll);
        // Once started, its log may be gigabytes of access lines: not read back into a string.
        if (!ready) reject(new Error(`${cmd} exited with ${code}: ${output().slice(-3000)}`));
      });
    });
  }
  const proc = spawn(full[0], [...full[1]], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let seen = false;
  let tail = '';
  proc.once('exit', (code) => {
    // A failure while running (not a stop asked for): show what the process said last.
    if (seen && code !== null && code !== 0) console.error(`${cmd} exited (${code}); its last output:\n${tail.slice(-3000)}`);
  });
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer) => {
      if (seen) {
        tail = (tail + c.toString()).slice(-8000); // later output (access logs) is kept only as a tail
        return;
      }
      out += c.toString();
      if (readyLine.test(out)) {
        seen = true;
        resolve({ proc, output: () => out });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${cmd} exited with ${code}: ${out}`)));
  });
}

export function stop(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
    setTimeout(() => proc.kill('SIGKILL'), 5_000).unref();
  });
}

/** CPU time (user + system) of a process so far, in microseconds. */
export function cpuMicros(pid: number): number {
  const { user, system } = cpuSplitMicros(pid);
  return user + system;
}

/** A process's user and system CPU time, µs (/proc/<pid>/stat: utime, stime). */
export function cpuSplitMicros(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: (Number(fields[11]) * 1e6) / CLK_TCK, system: (Number(fields[12]) * 1e6) / CLK_TCK };
}

/** A process and its children (nginx: master and worker). */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // the process is gone
  }
  return [pid, ...children.flatMap(processTree)];
}

/** Peak resident set size of a process, in MB. */
export function peakRssMb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

export function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A Zipf(s=1) sampler over n items: a few keys hot, a long tail cold, as real tenants behave. */
export function zipf(n: number, s = 1): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1) ** s;
  for (let i = 0; i < n; i++) cdf[i]! /= sum;
  return () => {
    const u = Math.random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export interface OpenLoopResult {
  rate: number;
  sent: number;
  ok: number;
  p50: number;
  p99: number;
  p999: number;
}

/**
 * Open-loop load at a fixed rate, latency measured from each request's *intended* start, so a stall counts
 * against every request it delays (coordinated omission corrected, as wrk2 does).
 */
export async function openLoop(url: string, rate: number, durationMs: number, headers: () => Record<string, string>): Promise<OpenLoopResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 128 });
  const target = new URL(url);
  const latencies: number[] = [];
  let ok = 0;
  let sent = 0;
  const start = performance.now();
  const total = Math.floor((rate * durationMs) / 1000);
  const inflight: Array<Promise<void>> = [];
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
      for (; sent < due; sent++) {
        const intended = start + (sent * 1000) / rate;
        inflight.push(
          new Promise<void>((done) => {
            const req = request({ host: target.hostname, port: target.port, path: target.pathname, headers: headers(), agent }, (res) => {
              res.resume();
              res.on('end', () => {
                latencies.push(performance.now() - intended);
                if (res.statusCode === 200) ok++;
                done();
              });
            });
            req.on('error', () => done());
            req.end();
          }),
        );
      }
      if (sent >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  await Promise.all(inflight);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { rate, sent, ok, p50: percentile(latencies, 50), p99: percentile(latencies, 99), p999: percentile(latencies, 99.9) };
}
