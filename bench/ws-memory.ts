// Memory per WebSocket session (`BENCH_ONLY=ws-memory npm run bench`): keygate and the bare `ws` relay each
// holding 0 and N (default 1,000) sessions, first idle, then carrying frames. Each process runs with
// bench/heap-probe.mjs, so the heap figures are live objects after full collections (garbage excluded); RSS is read
// from /proc before the probe, as the voice phase reads it. With WS_MEMORY_SNAPSHOT=1 the probe also writes heap
// snapshots, and the phase prints what one session adds to the heap, by constructor (the difference between the
// idle snapshots with 0 and N sessions, divided by N); writing a snapshot leaves tens of MB resident, so that
// run's RSS figures are not the sessions' (take them from a run without). bench/README.md, "Voice relay", has the
// figures.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { freePort, processTree, rssMb, startScript, stop } from './lib.ts';

const here = import.meta.dirname;
const PATH = '/v1/voice/a/stream';
const N = Number(process.env.WS_MEMORY_SESSIONS ?? 1_000);
const FRAME_BYTES = 320;
// Each session sends a frame every FRAME_MS (echoed back). 1,000 sessions at the voice cadence of 20 ms would be
// 100,000 frames a second through the relay, twice what one Node core relays (bench/README.md, "Voice relay"):
// the figure would be the backlog's, not the sessions'. At 100 ms every session's buffers and parsers are in use.
const FRAME_MS = Number(process.env.WS_MEMORY_FRAME_MS ?? 100);
const ACTIVE_MS = 4_000;
const SNAPSHOTS = process.env.WS_MEMORY_SNAPSHOT === '1';
const ONLY = process.env.WS_MEMORY_SYSTEMS?.split(',').filter(Boolean) ?? null;

/** A relay started with `--expose-gc --import bench/heap-probe.mjs` and the probe's environment. */
export interface ProbedSystem {
  name: string;
  url: string;
  headers: Record<string, string>;
  proc: ChildProcess;
  stop(): Promise<void>;
}
export type StartProbed = (flags: string[], env: Record<string, string>) => Promise<ProbedSystem>;

interface Probe {
  usedHeap: number;
  totalHeap: number;
  external: number;
  arrayBuffers: number;
  mallocedMemory: number;
  rss: number;
  snapshotFile?: string;
}

/**
 * KB per session: RSS (/proc, before the probe); after the probe's full GCs, the V8 heap in use, the heap V8 holds
 * from the system (committed: what the heap's share of RSS follows; the young generation grows with allocation, not
 * sessions), external memory (array buffers included), and RSS outside the committed heap (sockets, buffers, malloc).
 */
interface Figures {
  rssKb: number;
  heapKb: number;
  heapCommittedKb: number;
  externalKb: number;
  offHeapRssKb: number;
  /** RSS by kind of mapping (residentByKind), KB per session. */
  mallocKb: number;
  anonKb: number;
}

export interface WsMemoryRow {
  system: string;
  sessions: number;
  /**
   * Per session, KB: RSS (/proc, no forced GC) and, after full GCs, V8 heap and external memory (array buffers
   * included). Active: RSS while frames flow, heap and external just after they stop.
   */
  idle: Figures;
  active: Figures & { framesPerSecond: number };
  /** With WS_MEMORY_SNAPSHOT=1: the heap one idle session adds, by constructor (bytes and objects per session). */
  byConstructor?: Array<{ what: string; bytes: number; count: number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const treeRssKb = (pid: number) => processTree(pid).reduce((s, p) => s + rssMb(p), 0) * 1024;

/** Resident KB of a process by kind of mapping: malloc's main heap (`[heap]`), other anonymous memory (V8's heap pages, malloc's thread arenas, large mallocs), files (code). */
function residentByKind(pid: number): { malloc: number; anon: number; file: number } {
  const out = { malloc: 0, anon: 0, file: 0 };
  let kind: keyof typeof out = 'anon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (m) kind = m[2] === '[heap]' ? 'malloc' : m[1] !== '0' ? 'file' : 'anon';
    else if (line.startsWith('Rss:')) out[kind] += Number(/(\d+)/.exec(line)![1]);
  }
  return out;
}
const kb = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;

async function openSessions(sys: ProbedSystem, n: number): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  const url = sys.url.replace(/^http/, 'ws') + PATH;
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, { headers: sys.headers, perMessageDeflate: false });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => { let b = ''; res.on('data', (c) => (b += c)).on('end', () => reject(new Error(`${sys.name}: handshake answered ${res.statusCode} ${b}`))); });
    }));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Self size by constructor (objects) or by kind (strings, arrays, code, closures by name) in a heap snapshot. */
function heapByConstructor(file: string): Map<string, { bytes: number; count: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt, width] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size'), fields.length];
  const out = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = snap.strings[snap.nodes[i + nameAt]!]!;
    const what = type === 'object' || type === 'native' ? name
      : type.endsWith('string') ? '(string)'
      : type === 'closure' ? `(closure) ${name || '(anonymous)'}`
      : `(${type}) ${name.slice(0, 48)}`;
    const e = out.get(what) ?? { bytes: 0, count: 0 };
    e.bytes += snap.nodes[i + sizeAt]!;
    e.count++;
    out.set(what, e);
  }
  return out;
}

async function measure(start: StartProbed): Promise<WsMemoryRow> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-ws-memory-'));
  const probeFile = join(dir, 'probe.json');
  const sys = await start(['--expose-gc', '--import', join(here, 'heap-probe.mjs')], { KEYGATE_HEAP_PROBE: probeFile, ...(SNAPSHOTS ? { KEYGATE_HEAP_SNAPSHOT: join(dir, 'heap'), KEYGATE_HEAP_SNAPSHOTS: '2' } : {}) });
  const pid = sys.proc.pid!;
  const probe = async (): Promise<Probe> => {
    rmSync(probeFile, { force: true });
    sys.proc.kill('SIGUSR2');
    for (let i = 0; i < 1200 && !existsSync(probeFile); i++) await sleep(50);
    await sleep(100); // written in one call; let it land
    return JSON.parse(readFileSync(probeFile, 'utf8')) as Probe;
  };
  let sessions: WebSocket[] = [];
  try {
    await sleep(2_000);
    // A few sessions opened and closed first, so that what the first session loads (code, pools) is not charged to N.
    for (const ws of await openSessions(sys, 10)) ws.close();
    await sleep(1_000);
    const rss0 = treeRssKb(pid);
    const kinds0 = residentByKind(pid);
    const p0 = await probe();
    console.log(`${sys.name}: idle, ${kb(p0.usedHeap)} KB heap; opening ${N} sessions`);
    sessions = await openSessions(sys, N);
    await sleep(2_000);
    const rss1 = treeRssKb(pid);
    const kinds1 = residentByKind(pid);
    const p1 = await probe();
    console.log(`${sys.name}: ${N} sessions idle, ${kb(p1.usedHeap)} KB heap; sending frames`);
    // Carrying frames: each session sends one every FRAME_MS, spread evenly. RSS is read while they flow; the heap
    // just after they stop (a probe's full GCs during the flow take as long as the relay's backlog lets them).
    let echoed = 0;
    for (const ws of sessions) ws.on('message', () => void echoed++);
    const frame = Buffer.alloc(FRAME_BYTES, 0x55);
    let sent = 0;
    const t0 = performance.now();
    const tick = setInterval(() => {
      const now = performance.now(); // read once: a tick sends what was due when it began, then yields to the echoes
      for (let due = t0 + (sent * FRAME_MS) / N; due <= now; due = t0 + (sent * FRAME_MS) / N) sessions[sent++ % N]!.send(frame, { binary: true });
    }, 1);
    await sleep(ACTIVE_MS);
    const rss2 = treeRssKb(pid);
    const kinds2 = residentByKind(pid);
    const echoedAt = echoed;
    const elapsed = performance.now() - t0;
    clearInterval(tick);
    await sleep(500);
    const p2 = await probe();
    console.log(`${sys.name}: ${N} sessions after carrying frames, ${kb(p2.usedHeap)} KB heap`);
    const per = (a: number, b: number) => kb((b - a) / N);
    const figures = (rss: number, kinds: ReturnType<typeof residentByKind>, p: Probe): Figures => ({
      rssKb: Math.round(((rss - rss0) / N) * 10) / 10,
      heapKb: per(p0.usedHeap, p.usedHeap),
      heapCommittedKb: per(p0.totalHeap, p.totalHeap),
      externalKb: per(p0.external, p.external),
      offHeapRssKb: per(p0.rss - p0.totalHeap, p.rss - p.totalHeap),
      mallocKb: Math.round(((kinds.malloc - kinds0.malloc) / N) * 10) / 10,
      anonKb: Math.round(((kinds.anon - kinds0.anon) / N) * 10) / 10,
    });
    const row: WsMemoryRow = {
      system: sys.name,
      sessions: N,
      idle: figures(rss1, kinds1, p1),
      active: { ...figures(rss2, kinds2, p2), framesPerSecond: Math.round((echoedAt * 2) / (elapsed / 1000)) },
    };
    if (p0.snapshotFile && p1.snapshotFile) {
      const [a, b] = [heapByConstructor(p0.snapshotFile), heapByConstructor(p1.snapshotFile)];
      row.byConstructor = [...b]
        .map(([what, e]) => ({ what, bytes: Math.round((e.bytes - (a.get(what)?.bytes ?? 0)) / N), count: Math.round(((e.count - (a.get(what)?.count ?? 0)) / N) * 100) / 100 }))
        .filter((e) => e.bytes !== 0)
        .sort((x, y) => y.bytes - x.bytes)
        .slice(0, 30);
    }
    return row;
  } finally {
    for (const ws of sessions) ws.terminate();
    await sys.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function wsMemoryPhase(deps: { upstreamUrl: string; keygate: StartProbed }): Promise<WsMemoryRow[]> {
  const bare: StartProbed = async (flags, env) => {
    const port = await freePort();
    const proc = await startScript(join(here, 'systems/ws-relay.ts'), { PORT: String(port), UPSTREAM_URL: deps.upstreamUrl, ...env }, true, flags);
    return { name: 'bare ws relay', url: `http://127.0.0.1:${port}`, headers: {}, proc, stop: () => stop(proc) };
  };
  const systems: Array<[string, StartProbed]> = [['keygate', deps.keygate], ['bare', bare]];
  const rows: WsMemoryRow[] = [];
  for (const [name, start] of systems) {
    if (ONLY && !ONLY.some((o) => name.startsWith(o))) continue;
    const row = await measure(start);
    rows.push(row);
    if (row.byConstructor) {
      console.log(`\n${row.system}: heap one idle session adds, by constructor (bytes, objects)`);
      for (const e of row.byConstructor) console.log(`  ${String(e.bytes).padStart(6)} B  ${String(e.count).padStart(6)}  ${e.what}`);
    }
  }
  if (SNAPSHOTS) console.log('\n(WS_MEMORY_SNAPSHOT=1: the RSS columns include what writing the snapshots left resident; take them from a run without)');
  console.log(`\nMemory per WebSocket session, ${N} sessions (KB; heap and external after full GCs; active = a ${FRAME_BYTES}-byte frame every ${FRAME_MS} ms each way per session)\n`);
  console.log('| system | state | RSS | of it malloc [heap] | of it other anonymous (V8 pages, arenas) | heap in use | heap committed | external | frames/s relayed |\n|---|---|---|---|---|---|---|---|---|');
  const line = (r: WsMemoryRow, state: string, f: Figures, fps = '—') => console.log(`| ${r.system} | ${state} | ${f.rssKb} | ${f.mallocKb} | ${f.anonKb} | ${f.heapKb} | ${f.heapCommittedKb} | ${f.externalKb} | ${fps} |`);
  for (const r of rows) {
    line(r, 'idle', r.idle);
    line(r, 'active', r.active, String(r.active.framesPerSecond));
  }
  return rows;
}
