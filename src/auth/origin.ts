import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeyPolicy } from '../keys/types.ts';
import { refuse, type StageRefusal } from './refusal.ts';

// CORS. Origins are per key, so a preflight (which carries no key) is answered for any origin but
// `null`; the actual request is then held to the key's `allowedOrigins`.

const ALLOW_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';
const ALLOW_HEADERS = ['x-api-key', 'authorization', 'content-type', 'x-request-id'];
const EXPOSE_HEADERS = 'RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, X-Request-Id';
const MAX_AGE = '600';
const HEADER_TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

/** Exact origin, or `https://*.example.com` (at least one label; `https://evilexample.com` does not match). */
export function originAllowed(allowed: readonly string[], origin: string): boolean {
  for (const entry of allowed) {
    if (entry === origin) return true;
    const star = entry.indexOf('://*.');
    if (star < 0) continue;
    const scheme = entry.slice(0, star + 3);
    const suffix = entry.slice(star + 4); // ".example.com[:port]"
    if (!origin.startsWith(scheme) || !origin.endsWith(suffix)) continue;
    const label = origin.slice(scheme.length, origin.length - suffix.length);
    if (/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(label)) return true;
  }
  return false;
}

export const isPreflight = (req: IncomingMessage): boolean =>
  req.method === 'OPTIONS' && typeof req.headers.origin === 'string' && typeof req.headers['access-control-request-method'] === 'string';

/** The fields answering a CORS preflight: none but Vary and X-Request-Id for the `null` origin. */
export function preflightFields(req: IncomingMessage, requestId: string): Record<string, string> {
  const origin = req.headers.origin!;
  const requested = (req.headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h && HEADER_TOKEN.test(h));
  const headers: Record<string, string> = { Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers', 'X-Request-Id': requestId };
  if (origin !== 'null') {
    Object.assign(headers, {
      'Access-Control-Allow-Origin': origin,
      'Access-Control-Allow-Methods': ALLOW_METHODS,
      'Access-Control-Allow-Headers': [...new Set([...ALLOW_HEADERS, ...requested])].join(', '),
      'Access-Control-Max-Age': MAX_AGE,
    });
  }
  return headers;
}

/** Answers a CORS preflight without a key. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, requestId: string): void {
  res.writeHead(204, preflightFields(req, requestId));
  res.end();
}

/** A public key needs a listed Origin; any key with allowedOrigins rejects other origins. */
export function checkOrigin(key: KeyPolicy, origin: string | undefined): StageRefusal | null {
  if (origin === undefined) {
    return key.keyType === 'public' ? refuse('origin_not_allowed', 'Public keys can only be used from an allowed browser origin.') : null;
  }
  if (key.allowedOrigins === null) {
    return key.keyType === 'public' ? refuse('origin_not_allowed', 'This public key has no allowed origins.') : null;
  }
  if (origin === 'null' || !originAllowed(key.allowedOrigins, origin)) return refuse('origin_not_allowed', 'This origin may not use this API key.');
  return null;
}

/** CORS fields of an allowed response, added to a flat field list; the upstream's copies are dropped (headers.ts). */
export function addCorsFields(fields: string[], origin: string): void {
  fields.push('Access-Control-Allow-Origin', origin, 'Access-Control-Expose-Headers', EXPOSE_HEADERS, 'Vary', 'Origin');
}
