// The voice relay benchmark (`BENCH_ONLY=voice npm run bench`): N concurrent WebSocket sessions, each sending an
// audio frame every 20 ms, echoed by the upstream (so a frame crosses the relay every 20 ms in each direction),
// through: the upstream directly, a bare `ws` relay, nginx's WebSocket proxy and keygate (authenticated, session
// cap and session-minute metering on). The relay runs alone on its core; this process (the generator) and the
// echo upstream share the other. bench/README.md, "Voice relay", says how to read the figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { cpuMicros, freePort, percentile, pinned, processTree, proxyCore, rssMb, startScript, stop } from './lib.ts';
import { nginxInstalled, nginxWebSocketConfig } from './systems/nginx.ts';

const here = import.meta.dirname;
const PATH = '/v1/voice/a/stream';
const FRAME_MS = 20;
const quick = process.env.BENCH_QUICK === '1';
const SESSIONS = (process.env.VOICE_SESSIONS ?? (quick ? '100,250' : '100,250,500,750,1000')).split(',').map(Number);
const FRAME_SIZES = (process.env.VOICE_FRAMES ?? '320,640').split(',').map(Number);
const SECONDS = Number(process.env.VOICE_SECONDS ?? (quick ? 3 : 6));
const WARM_MS = 2_000;
const WORKERS = Number(process.env.VOICE_WORKERS ?? 1);
/** `VOICE_SYSTEMS=direct,keygate`: only the systems whose names start with one of these (A/B runs of one change). */
const ONLY = process.env.VOICE_SYSTEMS?.split(',').filter(Boolean) ?? null;
/**
 * `VOICE_PROFILE=1`: the Node relays run with --cpu-prof; after each run the profile's busy time (idle excluded) is
 * printed by function, the largest first, as shares — where a relay's time per frame goes.
 */
export const profileDir = process.env.VOICE_PROFILE === '1' ? mkdtempSync(join(tmpdir(), 'keygate-voice-prof-')) : null;
let profiles = 0;
/** A new profile folder's name and the node flags that write into it (none without VOICE_PROFILE). */
export function profileRun(system: string): { profile?: string; flags: string[] } {
  if (!profileDir) return { flags: [] };
  const profile = `${system}-${++profiles}`;
  return { profile, flags: ['--cpu-prof', '--cpu-prof-dir', join(profileDir, profile)] };
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }

/** Busy time by function in the profiles under `dir` (all of a run's processes), as percentages. */
function printProfile(name: string): void {
  if (!profileDir) return;
  const dir = join(profileDir, name);
  const self = new Map<string, number>();
  let busy = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
      if (functionName === '(idle)') return;
      const where = url ? `${url.replace(/^.*\/(node_modules|dist|bench)\//, '$1/').replace(/^node:/, '')}:${lineNumber + 1}` : '';
      const key = `${functionName || '(anonymous)'} ${where}`.trim();
      const dt = p.timeDeltas[i] ?? 0;
      self.set(key, (self.get(key) ?? 0) + dt);
      busy += dt;
    });
  }
  console.log(`\nprofile of ${name}: busy ${(busy / 1e6).toFixed(1)} s; self time by function`);
  for (const [fn, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 18)) console.log(`  ${((100 * t) / busy).toFixed(1).padStart(5)} %  ${fn}`);
}

export interface VoiceSystem {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** The relay's process, for CPU and RSS; null for the direct runs (the echo upstream is not a relay). */
  proc: ChildProcess | null;
  stop(): Promise<void>;
  /** With VOICE_PROFILE=1: the folder (under profileDir) its --cpu-prof profiles go to. */
  profile?: string;
}

export interface VoiceDeps {
  upstreamUrl: string;
  upstreamPort: number;
  upstreamPid: number;
  /**
   * Starts keygate on this upstream (as the other phases do) and returns a key allowed `sessions` at once, metered;
   * with `workers` > 1, that many worker processes, allowed on every core.
   */
  keygate(sessions: number, workers?: number): Promise<VoiceSystem>;
}

export interface VoiceRow {
  system: string;
  sessions: number;
  frameBytes: number;
  /** Round trip (client → relay → echo → relay → client), ms. */
  rtt: { p50: number; p99: number; p999: number };
  /** Frames crossing the relay per second (both directions) and whether all sent were received back. */
  framesPerSecond: number;
  sustained: boolean;
  lost: number;
  /** The relay's CPU over the window: µs per relayed frame, and its share of one core. */
  cpuUsPerFrame: number | null;
  relayCpu: number | null;
  /** (RSS with N sessions − RSS before any) ÷ N. */
  rssKbPerSession: number | null;
  /** The generator's own share of its core, and how late its sends were (p99, ms): saturation shows here first. */
  generatorCpu: number;
  echoCpu: number;
  sendLagP99: number;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const treeCpu = (pid: number) => processTree(pid).reduce((s, p) => s + cpuMicros(p), 0);
const treeRss = (pid: number) => processTree(pid).reduce((s, p) => s + rssMb(p), 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Collector = { record(rtt: number): void } | null;

async function openSessions(sys: VoiceSystem, n: number, onFrame: (data: Buffer) => void): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  const url = sys.url.replace(/^http/, 'ws') + PATH;
  for (let i = 0; i < n; i += 50) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(url, { headers: sys.headers, perMessageDeflate: false });
            ws.on('message', onFrame);
            ws.once('open', () => resolve(ws));
            ws.once('error', reject);
            ws.once('unexpected-response', (_req, res) => reject(new Error(`${sys.name}: handshake answered ${res.statusCode}`)));
          }),
        ),
      )),
    );
  }
  return out;
}

/**
 * Sends one frame per session every 20 ms for `ms`, the sessions' sends spread evenly over each 20 ms; the first
 * 8 bytes of a frame are its send time on this process's clock, read back from the echo.
 */
async function drive(sessions: WebSocket[], bytes: number, ms: number, setCollector: (c: Collector) => void) {
  const n = sessions.length;
  const frame = Buffer.alloc(bytes, 0x55);
  const expected = Math.ceil((n * ms) / FRAME_MS) + n;
  const rtts = new Float64Array(expected);
  const lags = new Float64Array(expected);
  let received = 0;
  let sent = 0;
  setCollector({ record: (rtt) => void (received < expected && (rtts[received++] = rtt)) });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const end = Math.min(now, t0 + ms);
      // Send every frame whose time has come (late ones at once: the lag is the generator's backlog).
      for (let due = t0 + (sent * FRAME_MS) / n; due <= end && sent < expected; due = t0 + (sent * FRAME_MS) / n) {
        frame.writeDoubleLE(performance.now(), 0);
        sessions[sent % n]!.send(frame, { binary: true });
        lags[sent++] = now - due;
      }
      if (now >= t0 + ms) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await sleep(300); // the last frames' echoes
  setCollector(null);
  const lat = Array.from(rtts.subarray(0, received)).sort((a, b) => a - b);
  const lag = Array.from(lags.subarray(0, sent)).sort((a, b) => a - b);
  return { sent, received, elapsed, lat, lagP99: percentile(lag, 99), generatorCpu: (cpu.user + cpu.system) / 1000 / elapsed };
}

async function measure(sys: VoiceSystem, n: number, deps: VoiceDeps): Promise<VoiceRow[]> {
  const relayPid = sys.proc?.pid ?? null;
  let collector: Collector = null;
  await sleep(300);
  const idleRss = relayPid ? treeRss(relayPid) : 0;
  const sessions = await openSessions(sys, n, (data) => collector?.record(performance.now() - data.readDoubleLE(0)));
  const rows: VoiceRow[] = [];
  try {
    await drive(sessions, FRAME_SIZES[0]!, WARM_MS, (c) => (collector = c)); // JIT, buffers, the first metering ticks
    for (const bytes of FRAME_SIZES) {
      const cpu0 = relayPid ? treeCpu(relayPid) : 0;
      const echo0 = cpuMicros(deps.upstreamPid);
      const r = await drive(sessions, bytes, SECONDS * 1000, (c) => (collector = c));
      const relayCpuUs = relayPid ? treeCpu(relayPid) - cpu0 : null;
      const relayed = r.received * 2; // each echoed frame crossed the relay twice
      rows.push({
        system: sys.name,
        sessions: n,
        frameBytes: bytes,
        rtt: { p50: round(percentile(r.lat, 50), 3), p99: round(percentile(r.lat, 99), 3), p999: round(percentile(r.lat, 99.9), 3) },
        framesPerSecond: Math.round(relayed / (r.elapsed / 1000)),
        sustained: r.received >= r.sent * 0.999 && r.lagP99 < FRAME_MS,
        lost: r.sent - r.received,
        cpuUsPerFrame: relayCpuUs === null ? null : round(relayCpuUs / Math.max(1, relayed)),
        relayCpu: relayCpuUs === null ? null : round(relayCpuUs / 1000 / r.elapsed),
        rssKbPerSession: relayPid && bytes === FRAME_SIZES[0] ? Math.round(((treeRss(relayPid) - idleRss) * 1024) / n) : null,
        generatorCpu: round(r.generatorCpu),
        echoCpu: round((cpuMicros(deps.upstreamPid) - echo0) / 1000 / r.elapsed),
        sendLagP99: round(r.lagP99),
      });
    }
  } finally {
    for (const ws of sessions) ws.terminate();
    await sleep(500);
  }
  return rows;
}

async function bareRelay(upstreamUrl: string): Promise<VoiceSystem> {
  const port = await freePort();
  const { profile, flags } = profileRun('bare');
  const proc = await startScript(join(here, 'systems/ws-relay.ts'), { PORT: String(port), UPSTREAM_URL: upstreamUrl }, true, flags);
  return { name: 'bare ws relay', url: `http://127.0.0.1:${port}`, headers: {}, proc, stop: () => stop(proc), profile };
}

async function nginx(upstreamPort: number): Promise<VoiceSystem> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-nginx-ws-'));
  const port = await freePort();
  const conf = nginxWebSocketConfig(dir, port, upstreamPort);
  const proc = spawn(pinned ? 'taskset' : 'nginx', pinned ? ['-c', proxyCore, 'nginx', '-p', dir, '-c', conf] : ['-p', dir, '-c', conf], { stdio: 'inherit' });
  for (let i = 0; i < 100 && !(await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false)); i++) await sleep(50);
  return { name: 'nginx (1 worker)', url: `http://127.0.0.1:${port}`, headers: {}, proc, stop: () => stop(proc) };
}

/** Every system at every N; a relay that saturated its core is not driven harder. */
export async function voicePhase(deps: VoiceDeps): Promise<{ rows: VoiceRow[]; secondsPerWindow: number; sessions: number[] }> {
  const all: Array<[string, () => Promise<VoiceSystem>]> = [
    ['direct', async () => ({ name: 'direct', url: deps.upstreamUrl, headers: {}, proc: null, stop: async () => {} })],
    ['bare', () => bareRelay(deps.upstreamUrl)],
    ...(nginxInstalled ? [['nginx', () => nginx(deps.upstreamPort)] as [string, () => Promise<VoiceSystem>]] : []),
    ['keygate', () => deps.keygate(Math.max(...SESSIONS) + 100)],
    // `VOICE_WORKERS=2`: keygate with two workers as well. On two cores they share the generator's core, so what
    // compares is CPU per frame (each process's own CPU time), not the frames a core sustains.
    ...(WORKERS > 1 ? [[`keygate-${WORKERS}`, () => deps.keygate(Math.max(...SESSIONS) + 100, WORKERS)] as [string, () => Promise<VoiceSystem>]] : []),
  ];
  const systems = all.filter(([name]) => !ONLY || ONLY.some((o) => name.startsWith(o))).map(([, start]) => start);
  const rows: VoiceRow[] = [];
  const done = new Set<string>();
  for (const n of SESSIONS) {
    for (const start of systems) {
      const sys = await start(); // each N on a fresh process, so RSS per session is not the last run's garbage
      try {
        if (done.has(sys.name)) continue;
        const got = await measure(sys, n, deps);
        rows.push(...got);
        for (const r of got) console.log(`${r.system.padEnd(18)} N=${String(n).padStart(4)} ${r.frameBytes} B  rtt p50 ${r.rtt.p50} p99 ${r.rtt.p99} p99.9 ${r.rtt.p999} ms  ${r.framesPerSecond} frames/s${r.sustained ? '' : ' BACKLOG'}  cpu ${r.cpuUsPerFrame ?? '—'} µs/frame (${r.relayCpu ?? '—'} core)  rss ${r.rssKbPerSession ?? '—'} KB/session  generator ${r.generatorCpu} core, echo ${r.echoCpu}, send lag p99 ${r.sendLagP99} ms`);
        // Driven harder only while the relay itself has room: one that used its whole core is saturated.
        if (got.some((r) => (r.relayCpu ?? 0) >= 0.95)) done.add(sys.name);
      } finally {
        await sys.stop();
      }
      if (sys.profile) printProfile(sys.profile);
    }
  }
  printVoice(rows);
  return { rows, secondsPerWindow: SECONDS, sessions: SESSIONS };
}

/** The markdown tables of bench/README.md's "Voice relay" section. */
export function printVoice(rows: VoiceRow[]): void {
  const direct = (n: number, bytes: number) => rows.find((r) => r.system === 'direct' && r.sessions === n && r.frameBytes === bytes);
  const added = (r: VoiceRow, k: 'p50' | 'p99' | 'p999') => {
    const d = direct(r.sessions, r.frameBytes);
    return d ? `+${round(r.rtt[k] - d.rtt[k], 2)}` : '?';
  };
  for (const bytes of FRAME_SIZES) {
    console.log(`\n${bytes}-byte frames, one every 20 ms each way per session\n`);
    console.log('| system | N | added p50 ms | added p99 ms | added p99.9 ms | frames/s relayed | sustained | µs CPU/frame | relay core | KB RSS/session | generator core | send lag p99 ms |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of rows.filter((x) => x.frameBytes === bytes)) {
      const isDirect = r.system === 'direct';
      console.log(
        `| ${r.system} | ${r.sessions} | ${isDirect ? `(rtt ${r.rtt.p50})` : added(r, 'p50')} | ${isDirect ? `(rtt ${r.rtt.p99})` : added(r, 'p99')} | ${isDirect ? `(rtt ${r.rtt.p999})` : added(r, 'p999')} | ${r.framesPerSecond} | ${r.sustained ? 'yes' : `no (${r.lost} lost)`} | ${r.cpuUsPerFrame ?? '—'} | ${r.relayCpu ?? '—'} | ${r.rssKbPerSession ?? '—'} | ${r.generatorCpu} (+ echo ${r.echoCpu}) | ${r.sendLagP99} |`,
      );
    }
  }
  console.log('\nN at which the round trip p99 passes 20 ms (one frame):');
  for (const name of [...new Set(rows.map((r) => r.system))]) {
    for (const bytes of FRAME_SIZES) {
      const first = rows.find((r) => r.system === name && r.frameBytes === bytes && r.rtt.p99 > FRAME_MS);
      const max = Math.max(...rows.filter((r) => r.system === name).map((r) => r.sessions));
      console.log(`- ${name}, ${bytes} B: ${first ? first.sessions : `not within ${max}`}`);
    }
  }
}
