import type { ServerResponse } from 'node:http';

/** Every error code keygate answers with, and its status. The one table for the whole service. */
export const codeToStatus = {
  validation_error: 400,
  malformed_request: 400,
  missing_api_key: 401,
  invalid_api_key: 401,
  key_expired: 401,
  key_disabled: 401,
  insufficient_permissions: 403,
  public_key_not_allowed: 403,
  origin_not_allowed: 403,
  mtls_required: 403,
  client_certificate_not_allowed: 403,
  assistant_not_allowed: 403,
  transient_assistant_not_allowed: 403,
  tenant_suspended: 403,
  // The authorizer listener (src/authz/): a caller outside authz.trustedGateways, and what only the inline
  // proxy can enforce (docs/gateways/README.md).
  gateway_not_trusted: 403,
  inline_proxy_required: 403,
  not_found: 404,
  route_not_allowed: 404,
  key_limit_reached: 409,
  cannot_revoke_current_key: 409,
  request_timeout: 408,
  payload_too_large: 413,
  rate_limited: 429,
  concurrency_limit_reached: 429,
  too_many_failed_attempts: 429,
  quota_exceeded: 429,
  internal_error: 500,
  upstream_unavailable: 502,
  store_unavailable: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof codeToStatus;

/** Refusals that both the HTTP path and the WebSocket upgrade answer, worded once. */
export const refusalMessage = {
  too_many_failed_attempts: 'Too many failed authentication attempts from this address.',
  store_unavailable: 'The key store is unavailable; try again shortly.',
} as const satisfies Partial<Record<ErrorCode, string>>;

export interface FieldProblem {
  path: string;
  message: string;
}

export interface ErrorOptions {
  headers?: Record<string, string | number>;
  details?: FieldProblem[];
}

/** A refusal the HTTP layer turns into the JSON envelope; thrown by handlers, never for infrastructure. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly options: ErrorOptions;
  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message);
    this.code = code;
    this.options = options;
  }
  get status(): number {
    return codeToStatus[this.code];
  }
}

const defaultHeaders: Partial<Record<ErrorCode, Record<string, string>>> = {
  store_unavailable: { 'Retry-After': '5' },
};

export interface ErrorResponse {
  status: number;
  headers: Record<string, string | number>;
  body: string;
}

/** The envelope `{"error": {code, message, requestId}}` with its status and headers, for any transport. */
export function errorResponse(requestId: string, code: ErrorCode, message: string, options: ErrorOptions = {}): ErrorResponse {
  const status = codeToStatus[code];
  const body = JSON.stringify({ error: { code, message, requestId, ...(options.details ? { details: options.details } : {}) } });
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Request-Id': requestId,
    ...defaultHeaders[code],
    ...options.headers,
  };
  // RFC 9110 §11.6.1: a 401 must say how to authenticate.
  if (status === 401) headers['WWW-Authenticate'] = 'ApiKey header="X-API-Key", Bearer realm="keygate"';
  return { status, headers, body };
}

const ANSWERED = Symbol('keygate.errorCode');
type Answered = ServerResponse & { [ANSWERED]?: ErrorCode };

/** The code of the error envelope keygate answered `res` with, if it did (the access line and the trace name it). */
export const answeredCode = (res: ServerResponse): ErrorCode | null => (res as Answered)[ANSWERED] ?? null;

/** Writes the error envelope. Safe to call once headers are gone: it then just ends the response. */
export function sendError(res: ServerResponse, requestId: string, code: ErrorCode, message: string, options: ErrorOptions = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  (res as Answered)[ANSWERED] = code;
  const { status, headers, body } = errorResponse(requestId, code, message, options);
  res.writeHead(status, headers);
  res.end(body);
}
