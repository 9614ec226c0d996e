// What keygate's modules hold in the V8 heap (what an idle process is made of). `npm run build`, then
// `node --expose-gc bench/memory-modules.ts`: imports keygate's built modules group by group, in the order
// `keygate serve` loads them, collecting garbage after each, and prints the heap (and its code space) each group
// added. The last two are not in an idle keygate: the configuration check runs in a process of its own
// (server/serve-config.ts), and the management APIs load on their first request (server/management.ts).
// Each group's figure includes what it is the first to load (a library shared with a later group counts here).
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const dist = join(import.meta.dirname, '..', 'dist');

const groups: Array<[string, string[]]> = [
  ['node: http, https, net, crypto, dns', ['node:http', 'node:https', 'node:net', 'node:crypto', 'node:dns']],
  ['logging: pino and the line writer', ['ops/logger.js']],
  ['metrics: prom-client (its registry, counter, gauge, histogram and default metrics)', ['ops/metrics.js', 'ops/probes.js']],
  ['store: ioredis', ['store/index.js']],
  ['key cache and authentication (jsonc-parser, for assistant rules)', ['cache/key-cache.js', 'auth/verify.js', 'auth/pipeline.js', 'auth/authorize.js', 'auth/policy.js']],
  ['limits: rate-limiter-flexible (its memory and Redis limiters), lru-cache', ['limits/rate-limits.js', 'limits/failures.js', 'limits/session-quota.js', 'limits/usage.js']],
  ['proxy: undici (its Pool and errors: forward.ts loads those files alone)', ['proxy/forward.js', 'proxy/public-handler.js']],
  ['WebSockets: ws', ['proxy/websocket.js']],
  ['the rest of serve (authorizer, webhooks worker, start-up)', ['server/main.js', 'server/app.js']],
  ['the configuration check, in its own process (zod, yaml, the schema, the policy file)', ['server/config-check.js']],
  ['management APIs, on first use: Express, their schemas, OpenAPI', ['server/management.js']],
];

const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const code = getHeapSpaceStatistics().filter((s) => s.space_name.startsWith('code')).reduce((sum, s) => sum + s.space_used_size, 0);
  return { heap: getHeapStatistics().used_heap_size, code };
};
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(2);

let before = await settle();
const start = before.heap;
console.log('| loaded | heap after GC, MB | of it code space, MB |\n|---|---|---|');
for (const [name, modules] of groups) {
  // Built-ins as keygate takes them (http/node-http.ts): an ES import of node:http would load Node's fetch too.
  for (const m of modules) await (m.startsWith('node:') ? process.getBuiltinModule(m) : import(pathToFileURL(join(dist, m)).href));
  const after = await settle();
  console.log(`| ${name} | ${mb(after.heap - before.heap)} | ${mb(after.code - before.code)} |`);
  before = after;
}
console.log(`| all of it | ${mb(before.heap - start)} | |`);
