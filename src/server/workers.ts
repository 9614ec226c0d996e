import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry } from 'prom-client';
import { EX_CONFIG } from '../config/errors.ts';
import type { Config } from '../config/schema.ts';
import { createLoggers } from '../ops/logger.ts';
import { scrapeGroupWith } from '../ops/metrics-group.ts';
import type { Keygate } from './app.ts';
import { answerConfiguration, type Checked } from './serve-config.ts';

/*
 * server.workers > 1: Node's cluster module. The primary process holds the listening sockets and hands each
 * accepted connection to a worker in turn (round robin, Linux's default); each worker runs all of keygate
 * (its own key cache, invalidation subscription and WebSocket sessions) and shares limits, quotas and session
 * caps through Redis, as replicas do. Why cluster and not SO_REUSEPORT: docs/scaling.md.
 */

const SCRAPE = 'keygate:scrape';
/** A scrape waits this long for the group's answer (prom-client itself gives each worker 5 s). */
const SCRAPE_TIMEOUT_MS = 6_000;
/** Restart delay of a worker that died: doubling from the first to the last while workers keep dying. */
const RESTART_FIRST_MS = 1_000;
const RESTART_MAX_MS = 30_000;
/** A worker that ran this long before dying counts as healthy: the next restart waits the first delay again. */
const HEALTHY_AFTER_MS = 60_000;

/** The cores this process may use: its CPU affinity (what `availableParallelism` reports), capped by a cgroup v2 CPU quota. */
export function coresAvailable(): number {
  let cores = availableParallelism();
  try {
    const [quota, period] = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim().split(/\s+/);
    if (quota !== 'max' && Number(quota) > 0 && Number(period) > 0) cores = Math.min(cores, Math.max(1, Math.ceil(Number(quota) / Number(period))));
  } catch {
    // No cgroup v2 CPU controller here: the affinity is the limit.
  }
  return cores;
}

export const workerCount = (setting: Config['server']['workers']): number => (setting === 'auto' ? coresAvailable() : setting);

export const isPrimary = (): boolean => cluster.isPrimary;

type ScrapeRequest = { type: typeof SCRAPE; id: number };
type ScrapeAnswer = { type: typeof SCRAPE; id: number; text?: string; error?: string };
const isScrape = (m: unknown): m is ScrapeRequest & ScrapeAnswer => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === SCRAPE;

/**
 * The primary: forks `count` workers and keeps that many running until SIGTERM or SIGINT, which it passes on
 * to every worker as SIGTERM (each drains as a single process does); exits when the last one has, 0 when all
 * stopped cleanly. A worker that dies is restarted after a delay; one that exits 78 (its configuration or
 * policy file refused) is not, and the group stops with 78. Each worker asks for the configuration and policy
 * this process checked (server/serve-config.ts).
 */
export function supervise(checked: Checked, count: number): void {
  let { config } = checked;
  const { logger, drain } = createLoggers(config.logging);
  if (!config.admin.token) {
    // One generated token for the whole group, in the configuration the workers receive: each would otherwise
    // make its own, and an admin request would succeed or fail depending on the worker its connection reached.
    config = { ...config, admin: { ...config.admin, token: `kg_admin_${randomBytes(24).toString('base64url')}` } };
    process.stderr.write(
      `\nkeygate: no admin token configured; generated one for this run:\n\n  ${config.admin.token}\n\n` +
        `Set KEYGATE_ADMIN_TOKEN (or admin.token) to keep a stable token.\n\n`,
    );
  }
  const forWorkers: Checked = { ...checked, config };
  const aggregator = new AggregatorRegistry();
  const live = new Map<number, { worker: Worker; since: number }>();
  let dying = 0; // consecutive deaths of short-lived workers, for the restart delay
  let stopping = false;
  let exitCode = 0;

  const fork = () => {
    const worker = cluster.fork();
    live.set(worker.id, { worker, since: Date.now() });
    worker.on('message', (message: unknown) => {
      if (answerConfiguration(message, forWorkers, (answer) => worker.isConnected() && worker.send(answer))) return;
      if (!isScrape(message)) return;
      // A worker asked for the group's metrics: prom-client asks every worker for its registry and sums them.
      aggregator.clusterMetrics().then(
        (text) => worker.isConnected() && worker.send({ type: SCRAPE, id: message.id, text } satisfies ScrapeAnswer),
        (err: unknown) => worker.isConnected() && worker.send({ type: SCRAPE, id: message.id, error: (err as Error).message } satisfies ScrapeAnswer),
      );
    });
  };

  const finish = () => {
    logger.info({ exitCode }, 'all workers stopped');
    void drain().then(() => process.exit(exitCode));
  };

  cluster.on('exit', (worker, code, signal) => {
    const entry = live.get(worker.id);
    live.delete(worker.id);
    if (stopping) {
      if (code !== 0) exitCode = code === EX_CONFIG ? EX_CONFIG : 1;
      if (live.size === 0) finish();
      return;
    }
    if (code === EX_CONFIG) {
      logger.error({ pid: worker.process.pid, code }, 'a worker refused its configuration; stopping the group');
      exitCode = EX_CONFIG;
      stop('worker configuration');
      return;
    }
    dying = entry && Date.now() - entry.since >= HEALTHY_AFTER_MS ? 1 : dying + 1;
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** (dying - 1));
    logger.error({ pid: worker.process.pid, code, signal, restartInMs: delayMs }, 'worker died; restarting it');
    setTimeout(() => stopping || fork(), delayMs);
  });

  const stop = (reason: string) => {
    if (!stopping) logger.info({ reason, workers: live.size }, 'shutting down the workers');
    stopping = true;
    // A second signal reaches the workers as a second SIGTERM: they stop at once, as a single process does.
    for (const { worker } of live.values()) worker.process.kill('SIGTERM');
    if (live.size === 0) finish();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  logger.info({ workers: count }, 'starting workers');
  for (let i = 0; i < count; i++) fork();
}

/**
 * In a worker: report keygate's registry to the primary's aggregator, answer `/metrics` with the group's
 * figures, and leave signals to the primary. A terminal's Ctrl-C reaches every process of the group; the
 * primary turns it into one SIGTERM per worker, so a worker ignores SIGINT itself (two signals would mean
 * "stop now, without draining").
 */
export function joinGroup(kg: Keygate): void {
  // prom-client installs a worker's answer to the primary's requests in the constructor, not in setRegistries.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([kg.metrics.registry]);
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let next = 0;
  process.on('message', (message: unknown) => {
    if (!isScrape(message)) return;
    const waiting = pending.get(message.id);
    if (!waiting) return;
    pending.delete(message.id);
    clearTimeout(waiting.timer);
    if (message.text !== undefined) waiting.resolve(message.text);
    else waiting.reject(new Error(`group metrics: ${message.error ?? 'no answer'}`));
  });
  scrapeGroupWith(
    () =>
      new Promise<string>((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error('group metrics: the primary did not answer'));
        }, SCRAPE_TIMEOUT_MS);
        pending.set(id, { resolve, reject, timer });
        process.send!({ type: SCRAPE, id } satisfies ScrapeRequest);
      }),
  );
  process.removeAllListeners('SIGINT');
  process.on('SIGINT', () => {});
}
