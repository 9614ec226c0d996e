import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { Refusal } from '../auth/pipeline.ts';
import { asciiJson } from '../http/ascii-json.ts';
import type { TokenClaims } from '../keys/session-token.ts';
import type { Identity } from '../auth/verify.ts';
import type { RateVerdict } from '../limits/types.ts';
import { contains } from '../http/client-ip.ts';
import { sign } from './signature.ts';
import { offersCredential } from '../auth/credential.ts';
import { AUTHORIZATION, CONNECTION, DROP, dropsAuthorization, fateOf, FORWARDED_FOR, FORWARDED_HOST, FORWARDED_PROTO, HOST, KEEP, SUBPROTOCOLS, XFCC } from './strip.ts';

// Header hygiene for forwarded requests: strip before you inject, by the one rule of decision/strip.ts. The
// forwarded head is built in one pass over `req.rawHeaders` into the flat [name, value, ...] list that undici's
// dispatch takes as it is: no header object to copy, delete from (which drops V8 into slow dictionary mode) and
// re-validate per field.

export { IDENTITY_HEADERS } from './strip.ts';

/** The path prefix of an upstream URL, without a trailing slash ('' for `http://host` or `http://host/`). */
export function basePathOf(upstreamUrl: string): string {
  const { pathname } = new URL(upstreamUrl);
  return pathname === '/' ? '' : pathname.replace(/\/$/, '');
}

/** What building the forwarded head needs beyond the request (shared by HTTP forwarding and WebSocket upgrades). */
export interface IdentityHeaderDeps {
  /** Peers whose X-Forwarded-For/-Proto/-Host are believed and extended. */
  trustedProxies: BlockList | null;
  /** Mesh peers whose X-Forwarded-Client-Cert is believed; stripped from anyone else. */
  xfccFrom: BlockList | null;
  encrypted: boolean;
  signingSecret: string | null;
  /** The path of `upstream.url` (basePathOf): the upstream receives it before the canonical path, and so does the signature. */
  basePath: string;
  /** `keys.privatePrefix`, `keys.publicPrefix` and the session tokens' prefix: an `Authorization: Bearer` holding any of them never travels on. */
  keyPrefixes: readonly string[];
  /**
   * The Host the upstream receives: the upstream URL's own (upstreamHostOf), or null to pass the client's on
   * (`upstream.preserveHost`). The client's is in X-Forwarded-Host either way.
   */
  upstreamHost: string | null;
}

/**
 * The Host of `upstream.url` (with its port unless the scheme's default), or null with `preserveHost`. Not the
 * client's by default: an upstream that routes by host name (an ingress, a virtual host) would otherwise let a
 * client choose which site receives its authorised, signed request, where keygate decided on the path alone.
 */
export function upstreamHostOf(upstreamUrl: string, preserveHost: boolean): string | null {
  return preserveHost ? null : new URL(upstreamUrl).host;
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
 * and any other `Bearer <keygate key>`, a Sec-WebSocket-Protocol offering a session token or a key, upgrade or not), method overrides, and any client copy of an identity header in any
 * spelling (decision/strip.ts); then the identity headers,
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
  const usedBearer = id.credential.source === 'bearer';
  let listed: Set<string> | null = null;
  let host: string | null = null;
  let xff: string | null = null;
  let proto: string | null = null;
  let forwardedHost: string | null = null;
  let out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const fate = fateOf(name.toLowerCase(), fromProxy);
    if (fate !== KEEP) {
      if (fate === DROP) continue;
      if (fate === CONNECTION) {
        listed = connectionListed(value, listed);
        continue;
      }
      if (fate === HOST) {
        if (host !== null) continue; // RFC 9112 §3.2: one Host; never pass a second one on
        host = value;
        if (deps.upstreamHost !== null) continue;
      } else if (fate === AUTHORIZATION) {
        // No second credential travels on: the Bearer that authenticated, and any other Bearer keygate key.
        if (dropsAuthorization(value, usedBearer, deps.keyPrefixes)) continue;
      } else if (fate === XFCC) {
        if (!keepXfcc) continue;
      } else if (fate === SUBPROTOCOLS) {
        if (offersCredential(value, deps.keyPrefixes)) continue;
      } else {
        // X-Forwarded-For/-Proto/-Host: a trusted proxy's are extended, anyone else's replaced.
        if (!fromProxy) continue;
        if (fate === FORWARDED_FOR) xff = xff === null ? value : `${xff}, ${value}`;
        else if (fate === FORWARDED_PROTO) proto ??= value;
        else if (fate === FORWARDED_HOST) forwardedHost ??= value;
        continue;
      }
    }
    out.push(name, value);
  }
  if (listed?.size) out = without(out, listed);
  if (deps.upstreamHost !== null) out.push('host', deps.upstreamHost);
  out.push(
    'x-request-id', requestId,
    'x-forwarded-for', xff === null ? peer : `${xff}, ${peer}`,
    'x-forwarded-proto', proto ?? (deps.encrypted ? 'https' : 'http'),
    'x-forwarded-host', forwardedHost ?? host ?? '',
  );
  identityFields(out, id, req.method ?? 'GET', deps.basePath + path, deps.signingSecret);
  return out;
}

/**
 * The identity fields keygate sets for the upstream (IDENTITY_HEADERS), added to a flat list: the same on every
 * door, whether keygate forwards the request or a gateway copies them from the authorizer's answer. The
 * signature covers the method and the path the upstream receives (`signedPath`).
 */
export function identityFields(into: string[], id: Identity, method: string, signedPath: string, signingSecret: string | null): string[] {
  const { key, tenant, token } = id;
  into.push('x-tenant-id', tenant.id, 'x-api-key-id', key.id, 'x-api-key-type', id.policy.keyType, 'x-api-key-permissions', id.policy.permissionsHeader);
  if (token) {
    into.push('x-session-token-id', token.id);
    const metadata = metadataHeader(token);
    if (metadata !== null) into.push('x-session-token-metadata', metadata);
  }
  if (signingSecret) into.push('x-keygate-signature', sign(signingSecret, { method, path: signedPath, tenantId: tenant.id, keyId: key.id }));
  return into;
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

const metadataHeaders = new WeakMap<TokenClaims, string>();

/** `X-Session-Token-Metadata` as forwarded: the metadata's JSON, non-ASCII escaped, worked out once per token. */
function metadataHeader(claims: TokenClaims): string | null {
  if (claims.metadata === null) return null;
  let v = metadataHeaders.get(claims);
  if (v === undefined) metadataHeaders.set(claims, (v = asciiJson(JSON.stringify(claims.metadata))));
  return v;
}
