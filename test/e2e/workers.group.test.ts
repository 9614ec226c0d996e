import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, createTenant, self } from '../helpers/api.ts';
import { runCli, type KeygateOptions, type KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// server.workers: 2 against real processes: the primary (the built CLI) and its two workers, real Redis.

const servers = useServers();
const CONNECTIONS = 32;
let group: KeygateProcess;

/** A worker group: resolves once every worker has logged that it listens. */
async function startGroup(opts: KeygateOptions & { workers?: number } = {}): Promise<KeygateProcess> {
  const workers = opts.workers ?? 2;
  const kg = await servers.keygate({
    ...opts,
    config: { server: { port: 0, opsPort: 0, host: '127.0.0.1', opsHost: '127.0.0.1', workers }, limits: { failedAttempts: { maxFailures: 1_000_000 } }, ...opts.config },
  });
  const deadline = Date.now() + 20_000;
  while (kg.output().split('"msg":"keygate listening"').length - 1 < workers) {
    if (Date.now() > deadline) throw new Error(`not every worker started:\n${kg.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return kg;
}

/** The worker processes of a primary (children in /proc). */
function workerPids(primary: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === primary) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Established TCP connections on local `port` that each process holds (by socket inode). */
function connectionsByPid(pids: number[], port: number): Map<number, number> {
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(portHex) && f[3] === '01') inodes.add(f[9]!);
  }
  const out = new Map<number, number>();
  for (const pid of pids) {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) n++;
      } catch {
        // closed meanwhile
      }
    }
    out.set(pid, n);
  }
  return out;
}

/** `count` proxied requests at once over a pool of CONNECTIONS keep-alive connections (spread over the workers). */
function burst(agent: Agent, kg: KeygateProcess, key: string, count: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${kg.url}/v1/x`, { agent, headers: { 'x-api-key': key } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      }),
    ),
  );
}

/** The sum of a metric's samples matching `labels` in one scrape (each scrape on a new connection). */
async function scrape(kg: KeygateProcess, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${kg.opsUrl}/metrics`, { headers: { connection: 'close' } })).text();
  return text.split('\n').filter((l) => l.startsWith(name) && l.includes(labels)).reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

beforeAll(async () => {
  // A long cache TTL, so only the invalidation message can explain a worker refusing a revoked key.
  group = await startGroup({ config: { cache: { ttlSeconds: 3600, negativeTtlSeconds: 3600 } } });
});

describe('server.workers: 2', () => {
  it('spreads connections over both workers and holds a per-minute limit exactly across them', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    try {
      const { key } = await createTenant(group, { name: 'workers-rpm', plan: 'pro' });
      const made = await self(group, key, 'POST', '/api-keys', { rateLimit: { requestsPerMinute: 40 } });
      const statuses = await burst(agent, group, made.body.key as string, 200);
      const pids = workerPids(group.proc.pid!);
      expect(pids).toHaveLength(2);
      const held = connectionsByPid(pids, group.port);
      for (const pid of pids) expect(held.get(pid)).toBeGreaterThan(0); // both workers served this burst
      expect(statuses.filter((s) => s === 200)).toHaveLength(40);
      expect(statuses.filter((s) => s === 429)).toHaveLength(160);
    } finally {
      agent.destroy();
    }
  });

  it('a revoked key is refused by every worker within 100 ms (median of 20 revocations, measured from the answer)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    try {
      const { tenant, key } = await createTenant(group, { name: 'workers-revoke', plan: 'enterprise', maxKeys: 100 });
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const made = await self(group, key, 'POST', '/api-keys', {});
        const victim = made.body.key as string;
        // Cached in both workers: every connection of the pool answered 200.
        expect(new Set(await burst(agent, group, victim, CONNECTIONS))).toEqual(new Set([200]));
        const held = connectionsByPid(workerPids(group.proc.pid!), group.port);
        expect([...held.values()].filter((n) => n > 0)).toHaveLength(2);
        expect((await admin(group, 'DELETE', `/tenants/${tenant.id}/api-keys/${made.body.id}`)).status).toBe(204);
        const answered = performance.now();
        let rounds = 0;
        for (;;) {
          const statuses = await burst(agent, group, victim, CONNECTIONS);
          if (statuses.every((s) => s === 401)) break;
          if (++rounds > 2_000) throw new Error('revocation never reached every worker');
        }
        times.push(performance.now() - answered);
      }
      times.sort((a, b) => a - b);
      console.log(`revocation across 2 workers (${CONNECTIONS} connections): p50 ${times[9]!.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms`);
      expect(times[9]).toBeLessThan(100);
    } finally {
      agent.destroy();
    }
  });

  it('/metrics answers for the whole group, whichever worker the scrape reaches', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    try {
      const { key } = await createTenant(group, { name: 'workers-metrics', plan: 'enterprise' });
      const counted = 'keygate_requests_total{listener="public"';
      const before = await scrape(group, counted);
      expect((await burst(agent, group, key, 100)).every((s) => s === 200)).toBe(true);
      // Ten scrapes on ten new connections reach both workers; each sees all 100 requests.
      const after = await Promise.all(Array.from({ length: 10 }, () => scrape(group, counted)));
      for (const total of after) expect(total - before).toBe(100);
      expect(await scrape(group, 'keygate_store_up')).toBe(1); // the minimum over workers, not a sum
    } finally {
      agent.destroy();
    }
  });

  it('restarts a worker that dies, and the group keeps serving', async () => {
    const [victim] = workerPids(group.proc.pid!);
    process.kill(victim!, 'SIGKILL');
    await expect.poll(() => group.output().includes('"msg":"worker died; restarting it"'), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => workerPids(group.proc.pid!).filter((p) => p !== victim).length, { timeout: 20_000 }).toBe(2);
    const { key } = await createTenant(group, { name: 'workers-restart' });
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    try {
      await expect.poll(async () => (await burst(agent, group, key, CONNECTIONS)).every((s) => s === 200), { timeout: 20_000 }).toBe(true);
    } finally {
      agent.destroy();
    }
  });
});

describe('server.workers: shutdown', () => {
  let slow: Upstream;
  beforeAll(async () => {
    slow = await startUpstream((req, res) => setTimeout(() => res.end('done'), req.url === '/slow' ? 1_500 : 0));
  });
  afterAll(() => slow.close());

  it('SIGTERM to the primary drains every worker: requests in flight on each finish, then all exit 0', async () => {
    const kg = await startGroup({ upstream: slow.url });
    const { key } = await createTenant(kg, { name: 'workers-drain' });
    const pids = workerPids(kg.proc.pid!);
    const agent = new Agent({ keepAlive: false, maxSockets: CONNECTIONS });
    const inFlight = Array.from({ length: 8 }, () =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${kg.url}/slow`, { agent, headers: { 'x-api-key': key } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      }),
    );
    await expect.poll(() => [...connectionsByPid(pids, kg.port).values()].filter((n) => n > 0).length).toBe(2);
    const code = kg.stop('SIGTERM');
    for (const r of await Promise.all(inFlight)) expect(r).toEqual({ status: 200, body: 'done' });
    expect(await code).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(); // every worker has exited
    expect(kg.output()).toContain('"msg":"all workers stopped"');
    expect(kg.output().split('"msg":"stopped"').length - 1).toBe(2); // each worker drained as a single process does
  });
});

describe('server.workers with the embedded store', () => {
  it('is refused at start-up with exit 78, among every other problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-workers-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'server:\n  workers: 2\nkeys:\n  publicPrefix: kg_sk_\n');
    for (const args of [['serve'], ['config', 'check']]) {
      const r = await runCli(args, { KEYGATE_CONFIG: file });
      expect(r.code).toBe(78);
      expect(r.stderr).toContain('- server.workers: must be 1 with the embedded store');
      expect(r.stderr).toContain('- keys.publicPrefix: must differ from keys.privatePrefix');
    }
  });

  it('KEYGATE_WORKERS sets it too, and "auto" is accepted', async () => {
    const r = await runCli(['config', 'check'], { KEYGATE_WORKERS: 'auto', REDIS_URL: 'redis://127.0.0.1:1' });
    expect(JSON.parse(r.stdout).server.workers).toBe('auto');
    const bad = await runCli(['config', 'check'], { KEYGATE_WORKERS: 'many' });
    expect((bad as { code: number }).code).toBe(78);
    expect((bad as { stderr: string }).stderr).toContain('server.workers (from KEYGATE_WORKERS)');
  });
});
