import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { Refusal } from '../auth/pipeline.ts';
import { metadataHeader } from '../keys/session-token.ts';
import type { Identity } from '../auth/verify.ts';
import type { RateVerdict } from '../limits/types.ts';
import { contains } from '../http/client-ip.ts';
import { sign } from './signature.ts';

// Header hygiene for forwarded requests (SPEC §5): strip before you inject. The forwarded head is built in one
// pass over `req.rawHeaders` into the flat [name, value, ...] list that undici's dispatch takes as it is: no
// header object to copy, delete from (which drops V8 into slow dictionary mode) and re-validate per field.

/** Headers keygate sets for the upstream; any client-sent copy is removed first. */
export const IDENTITY_HEADERS = ['x-tenant-id', 'x-api-key-id', 'x-api-key-type', 'x-api-key-permissions', 'x-session-token-id', 'x-session-token-metadata', 'x-keygate-signature'] as const;

// RFC 9110 §7.6.1: hop-by-hop fields, plus every field named in Connection, are never forwarded. `upgrade` is
// handled by the WebSocket path, which sets its own. The body is framed anew for the upstream connection
// (Transfer-Encoding), and keygate has already answered any 100-continue (Expect).
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'transfer-encoding', 'expect'];
const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port'];

// Method overrides (Express's method-override, Symfony, Rails' Rack::MethodOverride and others honour them):
// keygate authorises the request's own method, so a header that makes the upstream run another one is dropped
// from every peer.
const METHOD_OVERRIDE = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** Never passed on from the client: keygate sets (or drops) each of these itself. */
const STRIPPED = new Set<string>([...HOP_BY_HOP, ...IDENTITY_HEADERS, ...FORWARDED, ...METHOD_OVERRIDE, 'x-api-key', 'x-request-id']);

/**
 * Passed on only from `server.trustedProxies` (SPEC §5): other spellings of the client's address, scheme and
 * host (RFC 7239 Forwarded, and what nginx, Akamai, Cloudflare, Fastly and frameworks' IP helpers read), and
 * path overrides that IIS, Symfony, Spring and Traefik believe (X-Original-URL, X-Rewrite-URL,
 * X-Forwarded-Prefix, X-Forwarded-Uri): a direct client could otherwise tell the upstream another address or
 * another path than the one keygate authorised.
 */
const UNTRUSTED_STRIPPED = new Set<string>([
  'forwarded', 'x-forwarded', 'forwarded-for', 'x-forwarded-server', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-url-scheme', 'front-end-https',
  'x-real-ip', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip', 'cf-connecting-ip', 'fastly-client-ip',
  'x-original-url', 'x-original-uri', 'x-rewrite-url', 'x-forwarded-prefix', 'x-forwarded-uri', 'x-forwarded-path', 'x-original-host',
]);

/**
 * Client-certificate headers a TLS-terminating proxy adds for its backend, passed on only from trusted proxies:
 * RFC 9440 Client-Cert(-Chain); X-Client-Cert*, X-SSL-Client-* / SSL-Client-* (nginx, HAProxy, Apache, F5,
 * Google Cloud load balancers); X-Forwarded-Tls-Client-Cert(-Info) (Traefik); X-Amzn-Mtls-Clientcert* (AWS
 * ALB); CloudFront-Viewer-Cert-*; Cf-Cert-* / Cf-Client-Cert-* (Cloudflare); X-ARR-ClientCert (Azure).
 * Envoy's X-Forwarded-Client-Cert has its own rule (`tls.trustXfccFrom`). Matched by family, not name by
 * name, since each proxy names its fields in its own way.
 */
const CLIENT_CERT = /^(?:x-)?(?:ssl-client|ssl-cert|client-cert|client-verify|amzn-mtls-|forwarded-tls-client-|arr-clientcert)|^cf-(?:client-)?cert|^cloudfront-viewer-cert/;

/** `Authorization: Bearer <token>`, up to the token (RFC 6750 §2.1; the scheme is case-insensitive). */
const BEARER_SCHEME = /^[ \t]*bearer[ \t]+/i;

/** Whether an Authorization value is a Bearer credential holding a keygate key (of either type). */
function isKeygateBearer(value: string, prefixes: readonly string[]): boolean {
  const scheme = BEARER_SCHEME.exec(value);
  if (!scheme) return false;
  for (const prefix of prefixes) if (value.startsWith(prefix, scheme[0].length)) return true;
  return false;
}

/** What building the forwarded head needs beyond the request (shared by HTTP forwarding and WebSocket upgrades). */
/** The path prefix of an upstream URL, without a trailing slash ('' for `http://host` or `http://host/`). */
export function basePathOf(upstreamUrl: string): string {
  const { pathname } = new URL(upstreamUrl);
  return pathname === '/' ? '' : pathname.replace(/\/$/, '');
}

export interface IdentityHeaderDeps {
  /** Peers whose X-Forwarded-For/-Proto/-Host are believed and extended. */
  trustedProxies: BlockList | null;
  /** Mesh peers whose X-Forwarded-Client-Cert is believed (SPEC §7); stripped from anyone else. */
  xfccFrom: BlockList | null;
  encrypted: boolean;
  signingSecret: string | null;
  /** The path of `upstream.url` (basePathOf): the upstream receives it before the canonical path, and so does the signature. */
  basePath: string;
  /** `keys.privatePrefix` and `keys.publicPrefix`: an `Authorization: Bearer` holding a keygate key never travels on. */
  keyPrefixes: readonly string[];
}

/**
 * Adds the lower-case names listed in a Connection field to `into` (made when first needed), but for the usual
 * keep-alive / close and Host (never hop-by-hop). The common values list nothing and cost no split.
 */
function connectionListed(value: string, into: Set<string> | null): Set<string> | null {
  if (value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return into;
  }
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && name !== 'keep-alive' && name !== 'close' && name !== 'host') (into ??= new Set()).add(name);
  }
  return into;
}

/** A flat field list as a record (for replies built from records: error envelopes, upgrade refusals). */
export function fieldsRecord(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) out[pairs[i]!] = pairs[i + 1]!;
  return out;
}

/** Drops the pairs whose (lower-cased) name is in `names`. */
function without(pairs: string[], names: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < pairs.length; i += 2) if (!names.has(pairs[i]!.toLowerCase())) out.push(pairs[i]!, pairs[i + 1]!);
  return out;
}

/**
 * The head the upstream receives, as a flat [name, value, ...] list: the client's fields without hop-by-hop
 * fields, names listed in Connection, any credential (every X-API-Key, the Authorization that authenticated
 * and any other `Bearer <keygate key>`) and any client copy of an identity header; then the identity headers,
 * X-Request-Id and X-Forwarded-For/-Proto/-Host. A client's X-Forwarded-* values are kept (and extended), and
 * the other forwarding, path-override and client-certificate fields passed on, only when the peer is a trusted
 * proxy, so a caller cannot claim another address, path or certificate. `path` is the canonical
 * path (http/target.ts), which the signature covers.
 */
export function forwardedHeaders(req: IncomingMessage, id: Identity, path: string, requestId: string, deps: IdentityHeaderDeps): string[] {
  const raw = req.rawHeaders;
  const peer = req.socket.remoteAddress ?? '';
  const fromProxy = deps.trustedProxies !== null && contains(deps.trustedProxies, peer);
  const keepXfcc = deps.xfccFrom !== null && contains(deps.xfccFrom, peer);
  // X-API-Key always goes; Authorization only when it carried the key (otherwise it belongs to the upstream).
  const dropAuthorization = id.credential.source === 'bearer';
  let listed: Set<string> | null = null;
  let host: string | null = null;
  let xff: string | null = null;
  let proto: string | null = null;
  let forwardedHost: string | null = null;
  let out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (STRIPPED.has(lower)) {
      if (lower === 'connection') listed = connectionListed(value, listed);
      else if (!fromProxy) continue;
      else if (lower === 'x-forwarded-for') xff = xff === null ? value : `${xff}, ${value}`;
      else if (lower === 'x-forwarded-proto') proto ??= value;
      else if (lower === 'x-forwarded-host') forwardedHost ??= value;
      continue;
    }
    if (lower === 'host') {
      if (host !== null) continue; // RFC 9112 §3.2: one Host; never pass a second one on
      host = value;
    } else if (lower === 'authorization') {
      // No second credential travels on (SPEC §5): a Bearer keygate key beside the one that authenticated.
      if (dropAuthorization || isKeygateBearer(value, deps.keyPrefixes)) continue;
    } else if (lower === 'x-forwarded-client-cert') {
      if (!keepXfcc) continue;
    } else if (!fromProxy && (UNTRUSTED_STRIPPED.has(lower) || CLIENT_CERT.test(lower))) {
      continue;
    }
    out.push(name, value);
  }
  if (listed?.size) out = without(out, listed);
  const { key, tenant } = id;
  out.push(
    'x-tenant-id', tenant.id,
    'x-api-key-id', key.id,
    'x-api-key-type', id.policy.keyType,
    'x-api-key-permissions', id.policy.permissionsHeader,
    'x-request-id', requestId,
    'x-forwarded-for', xff === null ? peer : `${xff}, ${peer}`,
    'x-forwarded-proto', proto ?? (deps.encrypted ? 'https' : 'http'),
    'x-forwarded-host', forwardedHost ?? host ?? '',
  );
  if (id.token) {
    out.push('x-session-token-id', id.token.id);
    const metadata = metadataHeader(id.token);
    if (metadata !== null) out.push('x-session-token-metadata', metadata);
  }
  if (deps.signingSecret) {
    out.push('x-keygate-signature', sign(deps.signingSecret, { method: req.method ?? 'GET', path: deps.basePath + path, tenantId: tenant.id, keyId: key.id }));
  }
  return out;
}

// RFC 9110 §7.6.1: hop-by-hop response fields are not passed on; node frames the response itself.
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'trailer', 'te']);
const RATE_LIMIT_FIELDS = new Set(['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']);

/** Which upstream response fields keygate replaces with its own. */
export interface ResponseFieldOwner {
  /** keygate answers CORS itself: the upstream's Access-Control-* fields would arrive twice. */
  cors: boolean;
  /** keygate sets RateLimit-* for the tightest window of this key. */
  rateLimit: boolean;
}

/**
 * The response head for the client: the upstream's fields without hop-by-hop ones and without those keygate
 * sets itself (X-Request-Id always; CORS and RateLimit-* when it sets them), then keygate's own.
 */
export function responseHeaders(raw: Buffer[], own: ResponseFieldOwner, extra: string[]): string[] {
  let listed: Set<string> | null = null;
  let out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    // latin1 both ways keeps any byte of a field exactly as the upstream sent it.
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP_RESPONSE.has(lower)) {
      if (lower === 'connection') listed = connectionListed(raw[i + 1]!.toString('latin1'), listed);
      continue;
    }
    if (lower === 'x-request-id' || (own.cors && lower.startsWith('access-control-')) || (own.rateLimit && RATE_LIMIT_FIELDS.has(lower))) continue;
    out.push(name, raw[i + 1]!.toString('latin1'));
  }
  if (listed?.size) out = without(out, listed);
  for (let i = 0; i < extra.length; i++) out.push(extra[i]!);
  return out;
}

/** The RateLimit-* fields (draft-ietf-httpapi-ratelimit-headers) for the tightest window, added to a flat list. */
export function rateLimitFields(v: RateVerdict, into: string[] = []): string[] {
  into.push('RateLimit-Limit', String(v.limit), 'RateLimit-Remaining', String(v.remaining), 'RateLimit-Reset', String(v.resetSeconds));
  if (!v.ok) into.push('Retry-After', String(v.retryAfterSeconds));
  return into;
}

/** The 429 for a refused verdict, alike on HTTP and on the WebSocket upgrade: wording, RateLimit-*, Retry-After. */
export function rateLimitedRefusal(v: RateVerdict & { ok: false }, identity: Identity): Refusal {
  const message = v.code === 'quota_exceeded'
    ? `Monthly quota exceeded for this ${v.scope === 'key_quota' ? 'API key' : 'tenant'}; it renews when the month (UTC) ends.`
    : 'Rate limit exceeded; retry after the Retry-After interval.';
  return { ok: false, code: v.code, message, identity, headers: fieldsRecord(rateLimitFields(v)) };
}
