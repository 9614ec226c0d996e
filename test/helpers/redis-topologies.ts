import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './ports.ts';

// Redis Cluster and Sentinel as test fixtures (STYLE.md: "topologies are fixtures"): real redis-server
// processes on free ports, started once per test file, each able to lose its master to a SIGKILL and say
// when a replica has taken over. Only redis-server and redis-cli are needed (Debian's redis-server package
// depends on redis-tools, which holds redis-cli).

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Redis options every node shares: no persistence, and a replica syncs at once (Redis 7 waits 5 s by default). */
const NODE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0'];

// Processes die with the test worker even when a test times out before its cleanup runs.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/** A redis-server (or sentinel) process the fixture can SIGKILL and start again with the same arguments. */
class Node {
  readonly port: number;
  readonly #args: string[];
  readonly #cwd: string;
  #proc: ChildProcess | null = null;

  constructor(port: number, args: string[], cwd: string) {
    this.port = port;
    this.#args = args;
    this.#cwd = cwd;
  }

  get alive(): boolean {
    return this.#proc !== null && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  async start(extra: string[] = []): Promise<void> {
    const p = spawn('redis-server', [...this.#args, ...extra], { cwd: this.#cwd, stdio: 'ignore' });
    p.on('error', (err) => {
      throw new Error(`cannot start redis-server (is it installed? .ci/run installs it): ${err.message}`);
    });
    this.#proc = p;
    running.add(p);
    p.once('exit', () => running.delete(p));
    await waitFor(() => cli(this.port, 'PING').then((r) => r === 'PONG'), `redis on ${this.port} did not start`);
  }

  kill(): Promise<void> {
    const p = this.#proc;
    return new Promise((resolve) => {
      if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }
}

/** One command on a node through redis-cli; the reply as text (empty when the node does not answer). */
async function cli(port: number, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 2_000 });
    return stdout.trim();
  } catch {
    return '';
  }
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(what);
    await sleep(everyMs);
  }
}

/** Two ports per cluster node: the client port and the cluster bus port (`--cluster-port`, Redis 7). */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** A master just SIGKILLed. */
export interface Failover {
  /** Date.now() at the SIGKILL. */
  killedAt: number;
  /**
   * Resolves with the ms from the SIGKILL until the topology named a replica the new master (Cluster: a live
   * master serves the slot and every live node says `cluster_state:ok`; Sentinel: a sentinel names the
   * replica and it says it is a master).
   */
  promoted: Promise<number>;
}

export interface RedisTopology {
  kind: 'cluster' | 'sentinel';
  /** The `redis` section of a keygate configuration for this topology. */
  config: { clusterNodes: string[] } | { sentinels: Array<{ host: string; port: number }>; sentinelName: string };
  /** A client for test assertions (scans, counters). */
  client: Redis | Cluster;
  /** The ports of the current masters (one for Sentinel). */
  masters(): Promise<number[]>;
  /** The port of the master serving `key` (on Sentinel: the master). */
  masterOf(key: string): Promise<number>;
  /** SIGKILLs the master (on Cluster: the one serving `key`'s slot); resolves once it is dead. */
  killMaster(key?: string): Promise<Failover>;
  /** Starts the killed node again as a replica of the new master and waits until it is in sync. */
  heal(): Promise<void>;
  close(): Promise<void>;
}

// ---- Cluster ---------------------------------------------------------------------------------------------------

interface ClusterNodeRow {
  id: string;
  port: number;
  flags: string[];
  masterId: string | null;
  slots: Array<[number, number]>;
}

function parseClusterNodes(text: string): ClusterNodeRow[] {
  return text.split('\n').filter(Boolean).map((line) => {
    const [id, addr, flags, master, , , , , ...slots] = line.split(' ');
    return {
      id: id!,
      port: Number(/:(\d+)@/.exec(addr!)?.[1]),
      flags: flags!.split(','),
      masterId: master === '-' ? null : master!,
      slots: slots.filter((s) => !s.startsWith('[')).map((s) => {
        const [a, b] = s.split('-').map(Number);
        return [a!, b ?? a!] as [number, number];
      }),
    };
  });
}

const isMaster = (n: ClusterNodeRow) => n.flags.includes('master') && !n.flags.includes('fail') && !n.flags.includes('fail?');

export interface ClusterOptions {
  /** `cluster-node-timeout` in ms: how long a silent master stays master (default 1,000). */
  nodeTimeoutMs?: number;
}

/**
 * Six redis-server processes in cluster mode (three masters, three replicas) created by `redis-cli --cluster
 * create --cluster-replicas 1`, ready once every node says `cluster_state:ok` and every replica is in sync.
 */
export async function startRedisCluster(opts: ClusterOptions = {}): Promise<RedisTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-cluster-'));
  const ports = await freePorts(12);
  const nodes = Array.from({ length: 6 }, (_, i) => {
    const port = ports[i]!;
    return new Node(port, [
      '--port', String(port), ...NODE_ARGS,
      '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 1_000),
      '--cluster-port', String(ports[i + 6]!),
      // A replica takes over however long it was cut off: a test kills masters on purpose.
      '--cluster-replica-validity-factor', '0',
      // The other shards keep serving while one fails over (keygate's docs recommend this: a failover stays local).
      '--cluster-require-full-coverage', 'no',
    ], dir);
  });
  await Promise.all(nodes.map((n) => n.start()));
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });

  const live = () => nodes.filter((n) => n.alive);
  const table = async (): Promise<ClusterNodeRow[]> => {
    for (const n of live()) {
      const text = await cli(n.port, 'CLUSTER', 'NODES');
      if (text) return parseClusterNodes(text);
    }
    return [];
  };
  /** Every live node says ok, sees six nodes with three serving masters, and every replica's link is up. */
  const healthy = async (): Promise<boolean> => {
    for (const n of live()) {
      if (!(await cli(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
      const rows = parseClusterNodes(await cli(n.port, 'CLUSTER', 'NODES'));
      if (rows.length !== 6 || rows.filter(isMaster).length !== 3) return false;
      const info = await cli(n.port, 'INFO', 'replication');
      if (info.includes('role:slave') && !info.includes('master_link_status:up')) return false;
    }
    return true;
  };
  await waitFor(healthy, 'the cluster did not come up');

  const client = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => {});
  await new Promise((r) => client.once('ready', r));

  const ownerOf = async (key: string): Promise<{ slot: number; owner: ClusterNodeRow }> => {
    const slot = Number(await cli(live()[0]!.port, 'CLUSTER', 'KEYSLOT', key));
    const owner = (await table()).find((r) => isMaster(r) && r.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!owner) throw new Error(`no master serves slot ${slot}`);
    return { slot, owner };
  };

  let killed: Node | null = null;
  return {
    kind: 'cluster',
    config: { clusterNodes: nodes.map((n) => `redis://127.0.0.1:${n.port}`) },
    client,
    async masters() {
      return (await table()).filter(isMaster).map((n) => n.port);
    },
    async masterOf(key) {
      return (await ownerOf(key)).owner.port;
    },
    async killMaster(key = 'any') {
      const { slot, owner } = await ownerOf(key);
      const victim = nodes.find((n) => n.port === owner.port)!;
      await victim.kill();
      const killedAt = Date.now();
      killed = victim;
      // Over once a live master other than the victim serves the slot and every live node says ok.
      const promoted = waitFor(async () => {
        const now = await table();
        const served = now.some((r) => r.port !== victim.port && isMaster(r) && r.slots.some(([a, b]) => slot >= a && slot <= b));
        if (!served) return false;
        for (const n of live()) if (!(await cli(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
        return true;
      }, `no replica took over slot ${slot}`, 30_000, 20).then(() => Date.now() - killedAt);
      return { killedAt, promoted };
    },
    async heal() {
      if (!killed) return;
      // Its nodes.conf makes it rejoin; it finds its slots served by a newer epoch and becomes a replica.
      await killed.start();
      killed = null;
      await waitFor(healthy, 'the killed node did not rejoin as a replica');
    },
    async close() {
      client.disconnect();
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- Sentinel --------------------------------------------------------------------------------------------------

export interface SentinelOptions {
  /** `down-after-milliseconds`: how long a silent master stays master (default 1,000). */
  downAfterMs?: number;
}

/**
 * A master, one replica and three `redis-server --sentinel` processes watching them (quorum 2), ready once
 * every sentinel knows the replica and the two other sentinels.
 */
export async function startRedisSentinel(opts: SentinelOptions = {}): Promise<RedisTopology> {
  const name = 'keygate-test';
  const dir = mkdtempSync(join(tmpdir(), 'keygate-sentinel-'));
  const [p0, p1, ...sentinelPorts] = await freePorts(5);
  const trace = (port: number) => (process.env.KEYGATE_TRACE_DIR ? ['--logfile', join(process.env.KEYGATE_TRACE_DIR, `redis-${port}.log`)] : []);
  const data = [p0!, p1!].map((port) => new Node(port, ['--port', String(port), ...NODE_ARGS, ...trace(port)], dir));
  await data[0]!.start();
  await data[1]!.start(['--replicaof', '127.0.0.1', String(p0)]);
  const sentinels = sentinelPorts.map((port) => {
    // A sentinel rewrites its configuration file, so each has its own.
    const file = join(dir, `sentinel-${port}.conf`);
    writeFileSync(file, [
      `port ${port}`,
      'bind 127.0.0.1',
      `sentinel monitor ${name} 127.0.0.1 ${p0} 2`,
      `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1_000}`,
      // A failed election is retried after 2 × failover-timeout: 6 s, not the 10 s a 5,000 would give.
      `sentinel failover-timeout ${name} 3000`,
      `sentinel parallel-syncs ${name} 1`,
      ...(process.env.KEYGATE_TRACE_DIR ? [`logfile ${join(process.env.KEYGATE_TRACE_DIR, `sentinel-${port}.log`)}`, 'loglevel verbose'] : []),
      '',
    ].join('\n'));
    return new Node(port, [file, '--sentinel'], dir);
  });
  await Promise.all(sentinels.map((s) => s.start()));

  const master = async (): Promise<number | null> => {
    for (const s of sentinels.filter((x) => x.alive)) {
      const reply = (await cli(s.port, 'SENTINEL', 'get-master-addr-by-name', name)).split('\n');
      if (reply[1]) return Number(reply[1]);
    }
    return null;
  };
  /** Every sentinel knows the master, its one replica (in sync) and the two other sentinels. */
  const healthy = async (): Promise<boolean> => {
    for (const s of sentinels) {
      const fields = (await cli(s.port, 'SENTINEL', 'master', name)).split('\n');
      const get = (k: string) => fields[fields.indexOf(k) + 1];
      if (get('flags') !== 'master' || get('num-slaves') !== '1' || get('num-other-sentinels') !== '2') return false;
    }
    const m = await master();
    const info = await cli(m!, 'INFO', 'replication');
    return info.includes('role:master') && /slave0:.*state=online/.test(info);
  };
  await waitFor(healthy, 'the sentinels did not come up', 30_000, 100);

  const sentinelAddrs = sentinels.map((s) => ({ host: '127.0.0.1', port: s.port }));
  const client = new Redis({ sentinels: sentinelAddrs, name, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await new Promise((r) => client.once('ready', r));

  let killed: Node | null = null;
  return {
    kind: 'sentinel',
    config: { sentinels: sentinelAddrs, sentinelName: name },
    client,
    async masters() {
      const m = await master();
      return m === null ? [] : [m];
    },
    async masterOf() {
      const m = await master();
      if (m === null) throw new Error('no sentinel names a master');
      return m;
    },
    async killMaster() {
      const before = await master();
      const victim = data.find((n) => n.port === before)!;
      await victim.kill();
      const killedAt = Date.now();
      killed = victim;
      // Over once a sentinel names the other node and that node says it is a master.
      const promoted = waitFor(async () => {
        const now = await master();
        return now !== null && now !== before && (await cli(now, 'ROLE')).startsWith('master');
      }, 'no replica was promoted', 30_000, 20).then(() => Date.now() - killedAt);
      return { killedAt, promoted };
    },
    async heal() {
      if (!killed) return;
      // Started as a replica of the new master at once (a sentinel would convert it too, but only after its
      // next INFO round, up to 10 s later).
      await killed.start(['--replicaof', '127.0.0.1', String(await master())]);
      killed = null;
      await waitFor(healthy, 'the killed master did not rejoin as a replica', 30_000, 100);
    },
    async close() {
      client.disconnect();
      await Promise.all([...sentinels, ...data].map((n) => n.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
