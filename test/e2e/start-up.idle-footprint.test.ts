import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin } from '../helpers/api.ts';
import { root, startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// What an idle keygate holds (bench/README.md, "Memory"): a running keygate on Redis, as production runs it,
// looked at from inside through a preload (test/fixtures/loaded-modules.mjs) that lists every module it loads.
// Whatever only a management request, an admin command, tracing or a large upload uses stays unloaded until
// then, the configuration's checking (zod, yaml) is done in another process; and V8's memory reducer runs once
// it is idle, which on Node 24 it does only because keygate keeps it
// armed (server/memory-reducer.ts).

const PRELOAD = join(root, 'test', 'fixtures', 'loaded-modules.mjs');

interface Loaded {
  /** Module URLs (file: and node:), in load order. */
  loaded: string[];
  /** Node's own list: `NativeModule <id>` for each built-in loaded, `Internal Binding <name>` for each binding. */
  builtins: string[];
}

let redis: RedisServer;
let kg: KeygateProcess;
let dir: string;

/** What the process has loaded so far (the preload writes it on SIGUSR2). */
async function loadedNow(): Promise<Loaded> {
  const file = join(dir, 'loaded.json');
  rmSync(file, { force: true });
  kg.proc.kill('SIGUSR2');
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Loaded;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The files under node_modules, as `<package>/<path>`, and keygate's own built files, as `dist/<path>`. */
const files = ({ loaded }: Loaded) =>
  loaded.filter((u) => u.startsWith('file:')).map((u) => (u.includes('/node_modules/') ? u.slice(u.lastIndexOf('/node_modules/') + 14) : u.slice(u.indexOf('/dist/') + 1)));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keygate-idle-'));
  redis = await startRedis();
  kg = await startKeygate({
    redisUrl: redis.url,
    env: { NODE_OPTIONS: `--import=${PRELOAD}`, KEYGATE_LOADED_MODULES: join(dir, 'loaded.json'), KEYGATE_TRACE_MEMORY_REDUCER: '1' },
  });
});

afterAll(async () => {
  await kg?.stop();
  await redis?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('an idle keygate', () => {
  it('has loaded what it serves with, and none of what only checking the configuration, management, the CLI or tracing needs', async () => {
    const idle = await loadedNow();
    const loaded = files(idle);
    // What it serves with: the probe sees it.
    for (const f of ['dist/proxy/forward.js', 'dist/store/redis/redis-store.js', 'ioredis/built/index.js', 'undici/lib/dispatcher/pool.js', 'rate-limiter-flexible/lib/RateLimiterRedis.js', 'prom-client/lib/registry.js']) {
      expect(loaded).toContain(f);
    }
    const unwanted = [
      // The management APIs and the console load with their first request.
      /^express\//,
      /^dist\/api\//,
      /^dist\/server\/management\.js$/,
      // The admin commands' client and the healthcheck belong to other commands.
      /^openapi-fetch\//,
      /^dist\/client\//,
      /^dist\/server\/(cli-admin|healthcheck)\.js$/,
      // The configuration is read and checked in a short-lived process of its own.
      /^zod\//,
      /^yaml\//,
      /^dist\/config\/(load|schema)\.js$/,
      /^dist\/auth\/policy-file\.js$/,
      // The OpenTelemetry SDK loads only with tracing on.
      /^@opentelemetry\/sdk-/,
      // Entry points that load a whole library where keygate takes a few of its files.
      /^undici\/index\.js$/,
      /^rate-limiter-flexible\/index\.js$/,
      /^prom-client\/index\.js$/,
    ];
    expect(loaded.filter((f) => unwanted.some((re) => re.test(f)))).toEqual([]);
    // Node's own fetch (its bundled undici), which an ES import of node:http loads through the module's WebSocket
    // getters (http/node-http.ts).
    expect(idle.builtins).toContain('NativeModule http');
    expect(idle.builtins).not.toContain('NativeModule internal/deps/undici/undici');
  });

  it('loads the management APIs with their first request (and the probe sees what loads later)', async () => {
    expect((await admin(kg, 'GET', '/tenants')).status).toBe(200);
    const loaded = files(await loadedNow());
    expect(loaded.some((f) => f.startsWith('express/'))).toBe(true);
    expect(loaded).toContain('dist/server/management.js');
  });

  it("gives its garbage back: V8's memory reducer runs once it is idle", { timeout: 60_000 }, async () => {
    // The reducer looks every 8 s once armed; on Node 24 without keygate's nudge every look says "high alloc".
    const deadline = Date.now() + 45_000;
    while (!/Memory reducer: started GC/.test(kg.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(kg.output()).toMatch(/Memory reducer: low alloc[^\n]*\n[^\n]*Memory reducer: started GC #1/);
  });
});
