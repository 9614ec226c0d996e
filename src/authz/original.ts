import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { isIP, type BlockList } from 'node:net';
import { isCanonicalMethod } from '../decision/method.ts';
import { contains } from '../http/client-ip.ts';
import { isCredentialParam } from '../http/target.ts';

// The original request, as a gateway describes it in its authorization check. Which form a check
// uses is decided by the path it asks on, never by the headers it carries: a client's own `X-Original-URI`
// passes through nginx and Traefik untouched, so a header-driven choice would let the client pick the URI
// that is checked. Each form reads exactly its own fields and refuses a check where one is missing or repeated.
//
// - `/forward-auth`: Traefik ForwardAuth and Caddy forward_auth send the original method and URI in
//   `X-Forwarded-Method` and `X-Forwarded-Uri` (each set, not appended, by the gateway).
// - `/auth-request`: nginx `auth_request` sends what its configuration sets; the documented one
//   (docs/gateways/nginx.conf) sets `X-Original-Method $request_method` and `X-Original-URI $request_uri`.
// - `/ext-authz/<path>`: Envoy's ext_authz HTTP service (and Istio's envoyExtAuthzHttp provider) keeps the
//   original method and puts `path_prefix` (`/ext-authz`) before the original path and query.
//
// Every other header of the check is the original request's (gateways pass them through; Envoy those its
// `allowed_headers` list), which is what the pipeline reads: the credential, Origin, the assistant header and,
// from trusted mesh peers only (tls.trustXfccFrom), X-Forwarded-Client-Cert.

export type CheckForm = 'forward-auth' | 'auth-request' | 'ext-authz';

export interface Original {
  form: CheckForm;
  method: string;
  /** The original request target (origin-form path and query), before canonicalisation (http/target.ts). */
  uri: string;
}

export interface OriginalRefusal {
  code: 'not_found' | 'malformed_request';
  message: string;
}

export const ENVOY_PATH_PREFIX = '/ext-authz';

const FIELDS: Record<Exclude<CheckForm, 'ext-authz'>, readonly [method: string, uri: string]> = {
  'forward-auth': ['x-forwarded-method', 'x-forwarded-uri'],
  'auth-request': ['x-original-method', 'x-original-uri'],
};


const unknownPath: OriginalRefusal = {
  code: 'not_found',
  message: `No authorization endpoint here: use /forward-auth (Traefik, Caddy), /auth-request (nginx) or ${ENVOY_PATH_PREFIX} as Envoy's path_prefix.`,
};

/** Every value of a header as sent (`req.headers` joins repeats with a comma, which could hide a second copy). */
function valuesOf(req: IncomingMessage, name: string): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

function single(req: IncomingMessage, name: string): string | OriginalRefusal {
  const values = valuesOf(req, name);
  if (values.length === 1) return values[0]!;
  return { code: 'malformed_request', message: values.length ? `The check carries ${name} more than once.` : `The check carries no ${name}: is the gateway configured as docs/gateways/ shows?` };
}

/** The original method and URI a gateway's check describes, or why the check is refused. */
export function originalOf(req: IncomingMessage): Original | OriginalRefusal {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.startsWith(`${ENVOY_PATH_PREFIX}/`)) {
    return { form: 'ext-authz', method: req.method ?? 'GET', uri: url.slice(ENVOY_PATH_PREFIX.length) };
  }
  const form = path === '/forward-auth' ? 'forward-auth' : path === '/auth-request' ? 'auth-request' : null;
  if (form === null) return unknownPath;
  const [methodField, uriField] = FIELDS[form];
  const method = single(req, methodField);
  if (typeof method !== 'string') return method;
  // A gateway sends the client's method as it came: Go's server (Caddy, Traefik) passes `delete` on.
  if (!isCanonicalMethod(method)) return { code: 'malformed_request', message: `The check's ${methodField} is not an upper-case HTTP method.` };
  const uri = single(req, uriField);
  if (typeof uri !== 'string') return uri;
  return { form, method, uri };
}

export const isOriginalRefusal = (o: Original | OriginalRefusal): o is OriginalRefusal => (o as OriginalRefusal).code !== undefined;

/**
 * The client's address as the trusted gateway saw it: the right-most `X-Forwarded-For` entry (the one the
 * gateway added or set), then further left only past `server.trustedProxies` (load balancers in front of the
 * gateway). The gateways themselves are not walked past: inside a mesh a client may share their CIDR, and a
 * client-sent entry to the left must not choose whose failed attempts are counted. Without the header, or
 * with a malformed entry, the gateway's own address.
 */
export function gatewayClientIp(req: IncomingMessage, trustedProxies: BlockList | null): string {
  const peer = req.socket.remoteAddress ?? '';
  const xff = valuesOf(req, 'x-forwarded-for').join(',');
  if (!xff) return peer;
  const hops = xff.split(',').map((s) => s.trim()).filter(Boolean);
  let i = hops.length - 1;
  while (i > 0 && trustedProxies !== null && contains(trustedProxies, hops[i]!) && isIP(hops[i - 1]!)) i--;
  const hop = hops[i];
  return hop !== undefined && isIP(hop) ? hop : peer;
}

/**
 * The address the gateway received the original request from: the right-most `X-Forwarded-For` entry (the one
 * the gateway added), or null without one. Whether it is in `server.trustedProxies` decides whether the client's
 * forwarding and certificate fields may stay (decision/strip.ts), as the socket peer decides it for the proxy.
 */
export function gatewayPeerOf(req: IncomingMessage): string | null {
  const xff = valuesOf(req, 'x-forwarded-for').join(',');
  const last = xff.slice(xff.lastIndexOf(',') + 1).trim();
  return last && isIP(last) ? last : null;
}

/** Whether the original request is a WebSocket handshake (gateways drop `Upgrade` as hop-by-hop; `Sec-WebSocket-Key` is end to end). */
export function isWebSocketCheck(headers: IncomingHttpHeaders): boolean {
  if (headers['sec-websocket-key'] !== undefined) return true;
  const upgrade = headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase().includes('websocket');
}

/**
 * Whether the URI carries an `api_key` query parameter. The inline proxy removes it before forwarding; a gateway
 * forwards the URI as the client sent it, so the authorizer refuses rather than let a key reach the upstream.
 */
export function carriesQueryKey(uri: string): boolean {
  const q = uri.indexOf('?');
  if (q < 0) return false;
  // The same test the proxy removes them by (http/target.ts): `api_key`, and a `token` holding a session token.
  for (const pair of uri.slice(q + 1).split('&')) if (isCredentialParam(pair)) return true;
  return false;
}

