// `node bench/tracing-micro.ts`: the CPU a proxied request's tracing costs inside keygate (docs/tracing.md),
// measured in-process so that the machine's load does not hide it: the hooks one request runs with the real SDK,
// the batch processor and the OTLP/HTTP protobuf exporter sending to a local endpoint that discards what it gets.
// Two request shapes: the common one (key cached, allowed: server span and upstream span, the traceparent
// injected) and a cache miss (gate, key lookup and two Redis round trips as well). Requests run in slices of 64
// with the event loop turning between them, as under load, so the batch processor exports while requests are
// made and its queue keeps the configured bound (tracing's defaults: queue 2048, batches of 512). Process CPU
// (making spans, serialising and sending them) over N requests, minus the same loop with tracing off, divided by
// N, for each sampling ratio; BENCH_RATIOS=1,0.1 picks them, BENCH_SHAPES=hit the shapes, BENCH_REQUESTS=n the
// count, BENCH_DIST=<dir> another build (the one before a change: run both in turns, the machine's load moves).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Logging from '../dist/ops/logger.js';
import type * as TracingSdk from '../dist/ops/tracing-sdk.js';
import type { RequestTrace, Tracing } from '../dist/ops/tracing.js';

// BENCH_DIST=<dir>: another build's dist/ (the code before a change), to compare the same hooks.
const dist = process.env.BENCH_DIST ?? join(import.meta.dirname, '..', 'dist');
const { createLoggers } = (await import(pathToFileURL(join(dist, 'ops/logger.js')).href)) as typeof Logging;
const { createTracing } = (await import(pathToFileURL(join(dist, 'ops/tracing-sdk.js')).href)) as typeof TracingSdk;

const N = Number(process.env.BENCH_REQUESTS ?? 100_000);
const RATIOS = (process.env.BENCH_RATIOS ?? '1,0.1,0').split(',').map(Number);
const SLICE = 64;
const sink = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end());
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;
const { logger } = createLoggers({ level: 'warn', accessLog: false });

// What node:http hands keygate, reduced to what the tracing hooks read.
const req = { method: 'GET', headers: { 'user-agent': 'wrk' }, socket: { remoteAddress: '127.0.0.1' } } as never;
const head = ['host', '127.0.0.1:3000', 'x-api-key', 'redacted', 'accept', '*/*', 'x-request-id', 'r'];
// An ioredis client reduced to the method every command passes through; the command resolves at once.
const redis = { sendCommand: (command: { promise: Promise<unknown> }) => command.promise, options: { host: '127.0.0.1', port: 6379, db: 0 } };
const command = (name: string) => ({ name, promise: Promise.resolve(null) });

const tail = (t: RequestTrace) => {
  t.upstream('GET', 'http://127.0.0.1:3000/v1/calls/1', head.slice());
  t.upstreamHead(200);
  t.upstreamEnd();
  t.end(200, null, '/v1/calls/1', 'proxy', '127.0.0.1');
};
// The request's own garbage (BENCH_GARBAGE bytes of short-lived objects per request, as the proxy makes): spans
// kept until their batch is exported survive the young generation's collections that this garbage causes, and
// what that costs (copying them, promoting them, collecting the old generation) is tracing's.
const GARBAGE = Number(process.env.BENCH_GARBAGE ?? 0);
let sinkhole: unknown = null;
const litter = () => {
  for (let n = 0; n < GARBAGE; n += 64) sinkhole = { a: n, b: 'x', c: [n, n], d: null, e: sinkhole === null ? 0 : 1 };
};
const shapes = {
  /** The key is cached and the request allowed: no store round trip. */
  hit: async (tracing: Tracing | null) => {
    litter();
    if (tracing === null) return;
    const t = tracing.request(req);
    t.gate(() => t.decided('allowed', 'ten_01', 'key_01'));
    tail(t);
  },
  /** A cache miss: the key is read from the store (two commands) under the gate. */
  miss: async (tracing: Tracing | null) => {
    litter();
    if (tracing === null) return;
    const t = tracing.request(req);
    let done!: Promise<void>;
    t.gate(() => {
      done = tracing.lookup(async () => {
        await redis.sendCommand(command('hgetall'));
        await redis.sendCommand(command('get'));
      }).then(() => t.decided('allowed', 'ten_01', 'key_01'));
    });
    await done;
    tail(t);
  },
};

const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
async function measure(make: () => Tracing | null, shape: (t: Tracing | null) => Promise<void>): Promise<number> {
  const run = async (tracing: Tracing | null, n: number) => {
    for (let i = 0; i < n; i += SLICE) {
      const slice = [];
      for (let j = 0; j < SLICE; j++) slice.push(shape(tracing));
      await Promise.all(slice);
      await new Promise(setImmediate);
    }
  };
  const warm = make();
  await run(warm, 10_000);
  await warm?.shutdown();
  const tracing = make();
  const before = cpu();
  await run(tracing, N);
  await tracing?.shutdown(); // every span serialised and sent
  return (cpu() - before) / N;
}

const SHAPES = (process.env.BENCH_SHAPES ?? 'hit,miss').split(',');
for (const [name, shape] of Object.entries(shapes).filter(([n]) => SHAPES.includes(n))) {
  const floor = await measure(() => null, shape);
  for (const ratio of RATIOS) {
    const make = () => {
      const tracing = createTracing({
        config: { enabled: true, endpoint, headers: {}, serviceName: 'bench', sampler: { ratio, parentBased: true }, trustedPeers: null, maxQueueSize: 2048, exportDelayMs: 5000 },
        trustedPeers: null,
        version: 'bench',
        upstreamUrl: 'http://127.0.0.1:3000',
        logger,
      });
      tracing.traceRedis(redis);
      return tracing;
    };
    const us = await measure(make, shape);
    console.log(`${name}, ratio ${ratio}: ${(us - floor).toFixed(2)} µs CPU per request for tracing (${us.toFixed(2)} traced, ${floor.toFixed(2)} the loop alone)`);
  }
}
sink.close();
