import { addCorsFields } from '../auth/origin.ts';
import type { Door } from '../auth/pipeline.ts';
import type { Target } from '../http/target.ts';
import type { RateVerdict } from '../limits/types.ts';
import type { RequestTrace } from '../ops/tracing.ts';
import { rateLimitFields, type ResponseFieldOwner } from './headers.ts';

/**
 * One typed per-request record (the oauth2-proxy RequestScope idea): what the checks decided, what forwarding
 * needs, and what the access log and metrics report. A class, so every request's scope has one shape.
 */
export class RequestScope implements ResponseFieldOwner {
  readonly requestId: string;
  readonly started = performance.now();
  /** The canonical request target (http/target.ts), once the request has one. */
  target: Target | null = null;
  door: Door = 'proxy';
  /** The client's address (http/client-ip.ts, or a trusted gateway's word for it): what failed attempts count against. */
  clientIp = '';
  decision = 'pending';
  tenantId: string | null = null;
  keyId: string | null = null;
  upstreamSeconds: number | null = null;
  /** The upstream's response status, once its head arrived (the access line). */
  upstreamStatus: number | null = null;
  /** When the request was handed to the upstream (performance.now()): keygate's own share of the time ends there. */
  forwardedAt = 0;
  /** Body bytes keygate forwarded to the upstream and relayed back to the client (the access line). */
  requestBytes = 0;
  responseBytes = 0;
  /** The request's spans when tracing is on (ops/tracing.ts); null when it is off. */
  trace: RequestTrace | null = null;
  /** keygate's own response fields as a flat [name, value, ...] list: X-Request-Id, RateLimit-*, CORS. */
  readonly responseHeaders: string[];
  /** Set with the fields below: the upstream's own copies of them are dropped (headers.ts responseHeaders). */
  cors = false;
  rateLimit = false;
  /** The upstream exchange while it runs: a client that leaves takes it with it. */
  upstream: { cancel(): void } | null = null;

  constructor(requestId: string) {
    this.requestId = requestId;
    this.responseHeaders = ['X-Request-Id', requestId];
  }

  /** RateLimit-* for the tightest window, in place of any the upstream sends. */
  addRateLimit(verdict: RateVerdict): void {
    this.rateLimit = true;
    rateLimitFields(verdict, this.responseHeaders);
  }

  /** CORS fields for an allowed origin, in place of any the upstream sends. */
  addCors(origin: string): void {
    this.cors = true;
    addCorsFields(this.responseHeaders, origin);
  }
}
