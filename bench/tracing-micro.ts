// `node bench/tracing-micro.ts`: the CPU a proxied request's tracing costs inside keygate (docs/tracing.md),
// measured in-process so that the machine's load does not hide it: the hooks one request runs (server span, gate,
// upstream span with the traceparent injected, end) with the real SDK, the batch processor and the OTLP/HTTP
// protobuf exporter sending to a local endpoint that discards what it gets. Process CPU (both threads of work:
// making spans and serialising them) over N requests, divided by N, for each sampling ratio.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLoggers } from '../dist/ops/logger.js';
import { createTracing } from '../dist/ops/tracing-sdk.js';

const N = Number(process.env.BENCH_REQUESTS ?? 50_000);
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

for (const ratio of [1, 0.1, 0]) {
  const tracing = createTracing({
    config: { enabled: true, endpoint, headers: {}, serviceName: 'bench', sampler: { ratio, parentBased: true }, trustedPeers: null, maxQueueSize: 1_000_000, exportDelayMs: 200 },
    trustedPeers: null,
    version: 'bench',
    upstreamUrl: 'http://127.0.0.1:3000',
    logger,
  });
  const one = () => {
    const t = tracing.request(req);
    t.gate(() => t.decided('allowed', 'ten_01', 'key_01'));
    t.upstream('GET', 'http://127.0.0.1:3000/v1/calls/1', head.slice());
    t.upstreamHead(200);
    t.upstreamEnd();
    t.end(200, null, '/v1/calls/1', 'proxy', '127.0.0.1');
  };
  for (let i = 0; i < 5_000; i++) one(); // warm up
  await tracing.shutdown(); // what the warm-up made is exported before the measured part
  const measured = createTracing({
    config: { enabled: true, endpoint, headers: {}, serviceName: 'bench', sampler: { ratio, parentBased: true }, trustedPeers: null, maxQueueSize: 1_000_000, exportDelayMs: 200 },
    trustedPeers: null,
    version: 'bench',
    upstreamUrl: 'http://127.0.0.1:3000',
    logger,
  });
  const run = () => {
    const t = measured.request(req);
    t.gate(() => t.decided('allowed', 'ten_01', 'key_01'));
    t.upstream('GET', 'http://127.0.0.1:3000/v1/calls/1', head.slice());
    t.upstreamHead(200);
    t.upstreamEnd();
    t.end(200, null, '/v1/calls/1', 'proxy', '127.0.0.1');
  };
  const before = process.cpuUsage();
  const made = process.cpuUsage();
  for (let i = 0; i < N; i++) run();
  const spans = process.cpuUsage(made);
  await measured.shutdown(); // every span serialised and sent
  const all = process.cpuUsage(before);
  const us = (u: NodeJS.CpuUsage) => (u.user + u.system) / N;
  console.log(`ratio ${ratio}: ${us(all).toFixed(2)} µs CPU per request in all (${us(spans).toFixed(2)} making the spans, the rest exporting)`);
}
sink.close();
