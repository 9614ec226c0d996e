import type { Server } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { Core, Parts } from './wiring.ts';

// What runs once keygate is listening, and the graceful stop that ends it: readiness, the background work
// (webhook delivery, the outbox registrar, the expiry scan) and closing every resource in order.

/** What a stop closes, besides the wired parts: the listeners and what the public one made. */
export interface Running {
  servers: Server[];
  forwarder: { close(): void };
  websockets: { closeAll(): void };
}

/** Ready: the background work starts once every listener is up. */
export function markReady(core: Core, parts: Parts): void {
  core.readiness.set('ready');
  parts.webhooks.registrar?.start();
  parts.webhooks.worker?.start();
  parts.webhooks.expiryScanner?.start();
}

/**
 * Graceful stop: readiness fails at once; no new connections; WebSockets get 1001; in-flight
 * requests finish (bounded by shutdown.timeoutSeconds); usage and lastUsedAt are flushed; Redis closed.
 * The stop runs once; every later call returns the same promise.
 */
export function gracefulStop(config: Config, core: Core, parts: Parts, running: Running): () => Promise<void> {
  const { logger, readiness, tracing } = core;
  const { servers, forwarder, websockets } = running;
  let stopping: Promise<void> | null = null;
  return () => {
    stopping ??= (async () => {
      parts.markClosing();
      readiness.set('stopping');
      await drainDelay(servers, config.shutdown.drainDelaySeconds * 1000);
      websockets.closeAll();
      const closed = Promise.all(servers.map((server) => new Promise<void>((r) => server.close(() => r()))));
      // Keep-alive connections close as soon as their current response is done.
      const reaper = setInterval(() => {
        for (const server of servers) server.closeIdleConnections();
      }, 50);
      const deadline = setTimeout(() => {
        logger.warn('shutdown timeout reached; closing the remaining connections');
        for (const server of servers) server.closeAllConnections();
      }, config.shutdown.timeoutSeconds * 1000);
      await closed;
      clearInterval(reaper);
      clearTimeout(deadline);
      forwarder.close();
      await parts.webhooks.expiryScanner?.stop();
      await parts.webhooks.worker?.stop();
      await parts.webhooks.registrar?.stop();
      await parts.webhooks.drops?.flush();
      await parts.usage.close();
      await Promise.all(parts.flushAtShutdown.map((flush) => flush()));
      await parts.store.close();
      await tracing?.shutdown(); // the spans of the last requests are exported before exit
    })();
    return stopping;
  };
}

/**
 * The first step of a graceful stop: readiness already answers 503, and for `ms` the listeners keep serving, so
 * a load balancer that polls readiness takes this replica out before it stops accepting (a request it sends
 * meanwhile is served, not refused). Every response in that window closes its connection, so no client keeps
 * a kept-alive socket that is about to be closed under it.
 */
async function drainDelay(servers: Server[], ms: number): Promise<void> {
  const closeAfter = (_req: unknown, res: { shouldKeepAlive: boolean }) => {
    res.shouldKeepAlive = false;
  };
  // Prepended: it must run before a handler that answers at once (the probes) has written its headers.
  for (const server of servers) server.prependListener('request', closeAfter);
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}
