/* global process, setImmediate */
// Preloaded into keygate by the memory phase only (`node --expose-gc --import bench/heap-probe.mjs ...`), never by
// the image: on SIGUSR2 it collects garbage until the heap stops shrinking and writes V8's figures to the file
// named by KEYGATE_HEAP_PROBE, so heap per cached key counts live objects only, not garbage awaiting a GC.
// With KEYGATE_HEAP_SNAPSHOT set (bench/ws-memory.ts), each probe also writes a heap snapshot to
// `<KEYGATE_HEAP_SNAPSHOT>-<n>.heapsnapshot`, after the same collections, for a breakdown by constructor; with
// KEYGATE_HEAP_SNAPSHOTS=n, only the first n probes do (a snapshot of a busy process takes long).
// Plain JavaScript on purpose: a .ts preload would load Node's type stripper (a WebAssembly module) into the
// process being measured, about 15 MB of RSS that keygate itself never has.
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';

const out = process.env.KEYGATE_HEAP_PROBE;
const snapshot = process.env.KEYGATE_HEAP_SNAPSHOT;
const maxSnapshots = Number(process.env.KEYGATE_HEAP_SNAPSHOTS ?? Infinity);
let snapshots = 0;
const gc = globalThis.gc;
if (!out || !gc) throw new Error('heap-probe: needs --expose-gc and KEYGATE_HEAP_PROBE');

const turn = () => new Promise((resolve) => setImmediate(resolve));

process.on('SIGUSR2', () => {
  void (async () => {
    // Weak references (WeakMaps keyed by cached records) and finalizers need more than one full GC: collect until
    // a collection frees less than 64 KiB.
    let used = Infinity;
    for (let i = 0; i < 10; i++) {
      gc();
      await turn();
      const now = getHeapStatistics().used_heap_size;
      if (used - now < 65_536) break;
      used = now;
    }
    const heap = getHeapStatistics();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { used: s.space_used_size, physical: s.physical_space_size }]));
    const { external, arrayBuffers, rss } = process.memoryUsage();
    // After the figures: writing a snapshot allocates.
    const snapshotFile = snapshot && snapshots < maxSnapshots ? writeHeapSnapshot(`${snapshot}-${++snapshots}.heapsnapshot`) : undefined;
    writeFileSync(out, JSON.stringify({ at: Date.now(), snapshotFile, usedHeap: heap.used_heap_size, totalHeap: heap.total_heap_size, mallocedMemory: heap.malloced_memory, external, arrayBuffers, rss, spaces }));
  })();
});
