// The memory phase of `npm run bench` (a sidecar's footprint). `BENCH_ONLY=memory npm run bench` runs only
// this (about two minutes with 100,000 keys). One fresh keygate, run with the image's node flags plus, for the
// heap figures only, `--expose-gc --import bench/heap-probe.mjs` (a SIGUSR2 handler that collects garbage and
// reports V8's heap; nothing else in the process changes). In order:
//
// 1. RSS 3 s after it listens (Redis connected, no traffic: start-up's garbage and young generation still there),
//    then at 20 s, once V8's memory reducer (it starts 8 s after start-up's last GC) has run: the idle RSS.
// 2. The first 1,000 keys served (JIT, connection pools, rate-limit specs: one-off costs), then the heap
//    collected: the base.
// 3. The other keys served once each, then 1,000 WebSockets opened: RSS and peak RSS (no GC forced before this).
// 4. The WebSockets closed, the heap collected: heap per key *just served* (its cache entry, rate-limit windows,
//    and its usage row, which lives until the flushes after the key's last request).
// 5. 45 s later (usage counts flushed, lastUsedAt written, idle rows dropped; the cache entries stay, stale, for
//    stale-if-error): RSS holding the full cache, then the heap collected again: heap per *cached* key.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { peakRssMb, stop } from './lib.ts';
import { provision } from './provision.ts';

const here = import.meta.dirname;
const WARM_KEYS = 1_000;
const WEBSOCKETS = 1_000;

export interface StartedKeygate {
  url: string;
  opsUrl: string;
  proc: ChildProcess;
}

/** Starts keygate as the bench does, with extra node flags and environment. */
export type StartKeygate = (extraFlags: string[], extraEnv: Record<string, string>) => Promise<StartedKeygate>;

interface HeapProbe {
  usedHeap: number;
  totalHeap: number;
  external: number;
  arrayBuffers: number;
  rss: number;
  spaces: Record<string, { used: number; physical: number }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/** RSS split into anonymous memory (heap, malloc, stacks) and file-backed pages (the node binary's code and data). */
function rssParts(pid: number): { rssMb: number; anonMb: number; fileMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return { rssMb: Math.round(kb('VmRSS') / 1024), anonMb: Math.round(kb('RssAnon') / 1024), fileMb: Math.round(kb('RssFile') / 1024) };
}

export async function memoryPhase(opts: { redisUrl: string; upstreamUrl: string; count: number; path: string; start: StartKeygate }) {
  const { count, path } = opts;
  const { keys } = await provision(opts.redisUrl, count, { requestsPerMinute: 1_000_000_000, requestsPerDay: 1_000_000_000 });
  const dir = mkdtempSync(join(tmpdir(), 'keygate-bench-heap-'));
  const probeFile = join(dir, 'probe.json');
  const kg = await opts.start(['--expose-gc', '--import', join(here, 'heap-probe.mjs')], { KEYGATE_HEAP_PROBE: probeFile });
  const started = Date.now();
  const pid = kg.proc.pid!;
  const probe = async (): Promise<HeapProbe> => {
    rmSync(probeFile, { force: true });
    kg.proc.kill('SIGUSR2');
    for (let i = 0; i < 600 && !existsSync(probeFile); i++) await sleep(50);
    await sleep(50); // written in one call; let it land
    return JSON.parse(readFileSync(probeFile, 'utf8')) as HeapProbe;
  };
  const metric = async (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(await (await fetch(`${kg.opsUrl}/metrics`)).text())?.[1]);
  const touch = async (k: string): Promise<void> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await (await fetch(kg.url + path, { headers: { 'x-api-key': k } })).arrayBuffer();
        return;
      } catch {
        // a keep-alive connection closed under us; try again
      }
    }
  };
  // Moderate concurrency: this phase measures memory holding a full cache, not behaviour under overload.
  const serve = async (from: number, to: number) => {
    for (let i = from; i < to && kg.proc.exitCode === null; i += 32) await Promise.all(keys.slice(i, Math.min(i + 32, to)).map(touch));
  };
  try {
    await sleep(3_000 - (Date.now() - started));
    const justStarted = rssParts(pid);
    await sleep(20_000 - (Date.now() - started));
    const idle = rssParts(pid);
    const idleHeap = await probe();

    await serve(0, WARM_KEYS);
    const base = await probe();
    const baseEntries = await metric('keygate_key_cache_entries');
    await serve(WARM_KEYS, count);
    const sessions: WebSocket[] = [];
    for (let i = 0; i < WEBSOCKETS && kg.proc.exitCode === null; i += 100) {
      await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`${kg.url.replace('http', 'ws')}/v1/voice/a/stream`, { headers: { 'x-api-key': keys[0]! } });
        sessions.push(ws);
        ws.once('open', () => resolve());
        ws.once('error', reject);
      })));
    }
    if (kg.proc.exitCode !== null) return `keygate exited (${kg.proc.exitCode ?? kg.proc.signalCode}) while caching ${count} keys`;
    const loaded = { ...rssParts(pid), peakRssMb: Math.round(peakRssMb(pid)), cachedKeys: await metric('keygate_key_cache_entries'), openWebSockets: await metric('keygate_websocket_connections') };
    for (const ws of sessions) ws.terminate();
    for (let i = 0; i < 100 && (await metric('keygate_websocket_connections')) > 0; i++) await sleep(100);
    const served = await probe();
    await sleep(45_000);
    const settled = rssParts(pid);
    const cached = await probe();
    const cachedKeys = await metric('keygate_key_cache_entries');
    // Per entry the cache gained (a request the load generator gave up on after three tries caches nothing).
    const added = cachedKeys - baseEntries;
    const perKey = (p: HeapProbe) => Math.round((p.usedHeap - base.usedHeap) / added);
    const perKeyOffHeap = (p: HeapProbe) => Math.round((p.arrayBuffers - base.arrayBuffers) / added);
    return {
      keys: count,
      // Idle: started, Redis connected, no traffic.
      startRssMb: justStarted.rssMb,
      idleRssMb: idle.rssMb,
      idleAnonMb: idle.anonMb,
      idleFileMb: idle.fileMb,
      idleHeapUsedMb: mb(idleHeap.usedHeap),
      idleHeapTotalMb: mb(idleHeap.totalHeap),
      // Holding `count` cached keys and 1,000 WebSockets.
      cachedKeys: loaded.cachedKeys,
      openWebSockets: loaded.openWebSockets,
      rssMb: loaded.rssMb,
      peakRssMb: loaded.peakRssMb,
      // The same process 45 s after its last request, the WebSockets closed (a GC was forced before the wait).
      cachedSettledRssMb: settled.rssMb,
      // Live heap per key, after a full GC (the first 1,000 keys' one-off costs excluded).
      heapBytesPerKeyJustServed: perKey(served),
      heapBytesPerCachedKey: perKey(cached),
      offHeapBytesPerCachedKey: perKeyOffHeap(cached),
      cachedKeysAtEnd: cachedKeys,
      heapUsedMbWithCache: mb(cached.usedHeap),
    };
  } finally {
    await stop(kg.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}
