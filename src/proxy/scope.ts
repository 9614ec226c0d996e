import type { ResponseFieldOwner } from './headers.ts';

/**
 * One typed per-request record (the oauth2-proxy RequestScope idea): what the checks decided, what forwarding
 * needs, and what the access log and metrics report. A class, so every request's scope has one shape.
 */
export class RequestScope implements ResponseFieldOwner {
  readonly requestId: string;
  readonly started = performance.now();
  decision = 'pending';
  tenantId: string | null = null;
  keyId: string | null = null;
  upstreamSeconds: number | null = null;
  /** keygate's own response fields as a flat [name, value, ...] list: X-Request-Id, RateLimit-*, CORS. */
  readonly responseHeaders: string[];
  cors = false;
  rateLimit = false;
  /** The upstream exchange while it runs: a client that leaves takes it with it. */
  upstream: { cancel(): void } | null = null;

  constructor(requestId: string) {
    this.requestId = requestId;
    this.responseHeaders = ['X-Request-Id', requestId];
  }
}
