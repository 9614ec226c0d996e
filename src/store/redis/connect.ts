import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../../config/schema.ts';

/** One client type for a single Redis, Sentinel or a Cluster: every Redis user takes either. */
export type RedisClient = Redis | Cluster;

/** Reconnection backoff: quick at first, then every 500 ms (a promoted replica is found within half a second). */
const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** attempt, 500);

/**
 * One ioredis client per the configured topology. Commands fail fast rather than queue while Redis is down
 * (per-call timeout, no unbounded offline queue); reconnection continues in the background so
 * recovery needs no restart. Auto-pipelining batches concurrent commands into one round trip.
 */
export function createRedisClient(cfg: Config['redis'], role: 'main' | 'subscriber'): RedisClient {
  const main = role === 'main';
  const common: RedisOptions = {
    commandTimeout: main ? cfg.commandTimeoutMs : undefined,
    enableAutoPipelining: main,
    // A subscriber must queue its SUBSCRIBE until connected; the main client never queues.
    enableOfflineQueue: !main,
    maxRetriesPerRequest: main ? 0 : null,
    retryStrategy: reconnectDelay,
    connectTimeout: 2_000,
    lazyConnect: false,
  };
  if (cfg.clusterNodes) return new Cluster(clusterNodesOf(cfg.clusterNodes), clusterOptions(cfg, main, common));
  if (cfg.sentinels) {
    // failoverDetector: the sentinels' +switch-master makes the client reconnect to the promoted replica at
    // once, also when the old master is still reachable (a partition, a manual failover). Asking the sentinels
    // for the master happens only while reconnecting, never on a request's path: it gets at least 2 s (a
    // sentinel slow to answer on a loaded host must not make every round of questions fail), and a round that
    // found no master is tried again with the same backoff as a reconnection.
    return keepConnecting(new Redis({
      ...common,
      sentinels: cfg.sentinels,
      name: cfg.sentinelName,
      failoverDetector: true,
      sentinelCommandTimeout: Math.max(cfg.commandTimeoutMs, 2_000),
      sentinelRetryStrategy: reconnectDelay,
    }));
  }
  return keepConnecting(new Redis(cfg.url!, common));
}

/** Clients keygate is closing: the only ones allowed to end. */
const closing = new WeakSet<RedisClient>();

/** Closes a client for good (QUIT; keepConnecting leaves it ended). */
export function closeRedisClient(client: RedisClient): Promise<unknown> {
  closing.add(client);
  return client.quit();
}

/**
 * A client keygate has not closed never stays ended: it is connected again, with the reconnection backoff.
 *
 * ioredis ends a client for good (status `end`, every command then "Connection is closed.") when a connection
 * attempt is cut short, and on Sentinel one is, in a failover: the `+switch-master` subscription of the
 * connection that was lost (ioredis's failover detector) outlives it, and when the message comes while the
 * client is asking the sentinels for the master (or waiting to ask them again), the detector's disconnect
 * aborts that attempt, and ioredis gives up instead of retrying. Measured in the failover test under CPU load
 * (docs/scaling.md): writes never came back in 9 of 19 runs; with this, in 24 of 25 within 3.8 s of the
 * promotion.
 */
function keepConnecting(client: Redis): Redis {
  let attempt = 0;
  client.on('ready', () => (attempt = 0));
  client.on('end', () => {
    if (closing.has(client)) return;
    const timer = setTimeout(() => {
      if (!closing.has(client) && client.status === 'end') client.connect().catch(() => {});
    }, reconnectDelay(++attempt));
    timer.unref();
  });
  return client;
}

function clusterNodesOf(urls: string[]): Array<{ host: string; port: number }> {
  return urls.map((u) => {
    const url = new URL(u);
    return { host: url.hostname, port: Number(url.port || 6379) };
  });
}

/**
 * Cluster options chosen so that a command fails within about `redis.commandTimeoutMs` while its slot has no
 * master, instead of waiting out the failover (with ioredis's defaults a request touching a dead
 * master's slots waited 1.1–2.2 s). ioredis sets `commandTimeout` only once a command is handed to a node, and
 * by default re-queues a command that finds its node gone ("Connection is closed") every
 * `retryDelayOnFailover` ms up to `maxRedirections` times, and one that gets CLUSTERDOWN every
 * `retryDelayOnClusterDown` ms — 16 × 100 ms of waiting with no timer running. Here those errors fail the
 * command at once (the caller falls back: stale cache, local rate limits, 503); MOVED and ASK, which a failover
 * and a resharding answer with, are still followed at once, a few times.
 */
function clusterOptions(cfg: Config['redis'], main: boolean, common: RedisOptions): ClusterOptions {
  const first = new URL(cfg.clusterNodes![0]!);
  return {
    // Off on Cluster: ioredis groups auto-pipelined commands by node, then refuses a batch whose slots' node lists
    // differ ("All keys in the pipeline should belong to the same slots allocation group") — which they do while
    // a replica is missing from part of the slot table — and the command fails (seen as 503s on tenant creation).
    enableAutoPipelining: false,
    enableOfflineQueue: common.enableOfflineQueue,
    maxRedirections: 6,
    retryDelayOnMoved: 0,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    // TRYAGAIN (a multi-key command during a slot migration) clears within milliseconds; the timeout bounds it.
    retryDelayOnTryAgain: main ? 20 : 100,
    // The slot map: asked for with the command timeout, and refreshed every 5 s as well as on MOVED, so a
    // promoted replica is found even by a replica of keygate that sends nothing to its slots meanwhile.
    slotsRefreshTimeout: Math.min(cfg.commandTimeoutMs, 1_000),
    slotsRefreshInterval: 5_000,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: {
      ...common,
      username: first.username || undefined,
      password: first.password ? decodeURIComponent(first.password) : undefined,
      tls: first.protocol === 'rediss:' ? {} : undefined,
    },
  };
}

/** Resolves once the client is ready, or after `timeoutMs` (keygate then starts degraded). */
export async function waitReady(client: RedisClient, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  if (!(await readyEvent(client, timeoutMs))) return false;
  if (client instanceof Cluster) await mastersConnected(client, deadline);
  return true;
}

function readyEvent(client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    const onReady = () => done(true);
    function done(ok: boolean) {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    }
    client.on('ready', onReady);
  });
}

/**
 * A Cluster client is ready once it knows the slots, but it opens each master's own connection on that master's
 * first command, and without an offline queue a command to a master whose connection is still opening fails
 * ("Connection is closed."): the first requests after start-up could be answered 503. So every master's
 * connection is opened before keygate says it is ready (until the deadline; a master still opening then is
 * retried by the next command).
 */
async function mastersConnected(client: Cluster, deadline: number): Promise<void> {
  const masters = client.nodes('master');
  for (const node of masters) if (node.status === 'wait') node.connect().catch(() => {});
  while (Date.now() < deadline && !masters.every((node) => node.status === 'ready')) await new Promise((r) => setTimeout(r, 10));
}
