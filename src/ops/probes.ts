import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from '../http/errors.ts';
import { pathOf } from '../http/path.ts';
import { requestIdOf } from '../http/request-id.ts';
import type { Readiness } from './health.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { groupScrape } from './metrics-group.ts';
import { OPENMETRICS_TYPE, openMetricsView, wantsOpenMetrics } from './openmetrics.ts';

export interface ProbeDeps {
  readiness: Readiness;
  metrics: Metrics;
  logger: Logger;
  cacheSize: () => number;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The internal listener's probes — `GET`/`HEAD` `/healthz`, `/readyz`, `/metrics` — answered without Express, so
 * they work from the first moment and the management APIs are loaded only when one of them is asked for
 * (server/management.ts). The answers are byte for byte Express's (headers, bodies, metrics); any other form of
 * these paths (`/healthz/`, other methods, conditional requests) is left to Express, which answers it as it
 * always did. Returns false when the request is not one of them.
 */
export function createProbes(deps: ProbeDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { readiness, metrics, logger } = deps;
  const duration = metrics.requestDuration.series('internal');
  const openMetrics = openMetricsView(metrics.registry);

  // The classic text format unless the scraper asks for OpenMetrics (the format that carries exemplars).
  const scrape = (accept: string | undefined): Promise<[type: string, text: string]> =>
    groupScrape()
      ? groupScrape()!().then((text) => [metrics.registry.contentType, text])
      : wantsOpenMetrics(accept)
      ? openMetrics().then((text) => [OPENMETRICS_TYPE, text])
      : metrics.registry.metrics().then((text) => [metrics.registry.contentType, text]);

  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.statusCode = status;
    res.setHeader('Content-Type', type);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  };

  return function probe(req, res) {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const path = pathOf(req.url ?? '/');
    if (path !== '/healthz' && path !== '/readyz' && path !== '/metrics') return false;
    if (req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined) return false;
    const started = performance.now();
    const requestId = requestIdOf(req);
    res.setHeader('X-Request-Id', requestId);
    res.once('finish', () => {
      metrics.countRequest('internal', method, res.statusCode);
      duration.observe((performance.now() - started) / 1000);
    });
    if (path === '/healthz') {
      send(res, 200, JSON_TYPE, '{"status":"ok"}');
      return true;
    }
    const answer = path === '/readyz'
      ? readiness.report().then(({ httpStatus, body }) => send(res, httpStatus, JSON_TYPE, JSON.stringify(body)))
      : (metrics.cacheEntries.set(deps.cacheSize()), scrape(req.headers.accept).then(([type, text]) => send(res, 200, type, text)));
    answer.catch((err: unknown) => {
      logger.error({ err, requestId }, 'unhandled error in management API');
      sendError(res, requestId, 'internal_error', 'Internal error.');
    });
    return true;
  };
}
