// What a client's request may not carry to the upstream: one rule, read by every door. The inline proxy and its
// WebSocket upgrade apply it field by field while they build the forwarded head (decision/headers.ts); the
// authorizer turns it into the list of names a gateway removes (removalList below), and the configurations in
// docs/gateways/ clear the named part of it. Strip before inject (oauth2-proxy's header injector): every client
// copy of a field keygate sets goes first, in any case and with `_` for `-`.

/** What becomes of one request field (numbers, not strings: the proxy asks this once per field). */
export const KEEP = 0;
/** Never passed on. */
export const DROP = 1;
/** Hop-by-hop, and names further fields that are (RFC 9110 §7.6.1). */
export const CONNECTION = 2;
export const HOST = 3;
/** Dropped when it carries a keygate key (dropsAuthorization). */
export const AUTHORIZATION = 4;
/** X-Forwarded-For/-Proto/-Host: set by keygate, extending a trusted proxy's. */
export const FORWARDED_FOR = 5;
export const FORWARDED_PROTO = 6;
export const FORWARDED_HOST = 7;
/** X-Forwarded-Client-Cert: passed on only from `tls.trustXfccFrom` peers. */
export const XFCC = 8;
/**
 * Sec-WebSocket-Protocol: dropped when it offers a session token (the `keygate.token, <token>` pair, whichever
 * credential authenticated); an upgrade offers the upstream the other subprotocols (proxy/ws-handshake.ts), and a
 * gateway, which cannot remove one member of the list, has the request refused (authz/original.ts).
 */
export const SUBPROTOCOLS = 9;
export type Fate = typeof KEEP | typeof DROP | typeof CONNECTION | typeof HOST | typeof AUTHORIZATION | typeof FORWARDED_FOR | typeof FORWARDED_PROTO | typeof FORWARDED_HOST | typeof XFCC | typeof SUBPROTOCOLS;

/** Headers keygate sets for the upstream; any client-sent copy is removed first. */
export const IDENTITY_HEADERS = ['x-tenant-id', 'x-api-key-id', 'x-api-key-type', 'x-api-key-permissions', 'x-session-token-id', 'x-session-token-metadata', 'x-keygate-signature'] as const;

// RFC 9110 §7.6.1: hop-by-hop fields, plus every field named in Connection, are never forwarded. `upgrade` is
// handled by the WebSocket path, which sets its own. The body is framed anew for the upstream connection
// (Transfer-Encoding), and keygate has already answered any 100-continue (Expect). A gateway drops these itself.
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'transfer-encoding', 'expect'];

/**
 * Method overrides (Express's method-override, Symfony, Rails' Rack::MethodOverride, ASP.NET and others honour
 * them): keygate authorises the request's own method, so a field that makes the upstream run another one is
 * dropped from every peer.
 */
export const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/**
 * Passed on only from `server.trustedProxies`: other spellings of the client's address, scheme and host (RFC 7239
 * Forwarded, and what nginx, Akamai, Cloudflare, Fastly and frameworks' IP helpers read), and path overrides that
 * IIS, Symfony, Spring and Traefik believe (X-Original-URL, X-Rewrite-URL, X-Forwarded-Prefix, X-Forwarded-Uri):
 * a direct client could otherwise tell the upstream another address or another path than the one authorised.
 */
const UNTRUSTED = [
  'forwarded', 'x-forwarded', 'forwarded-for', 'x-forwarded-server', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-url-scheme', 'front-end-https',
  'x-real-ip', 'true-client-ip', 'x-client-ip', 'x-cluster-client-ip', 'cf-connecting-ip', 'fastly-client-ip',
  'x-original-url', 'x-original-uri', 'x-rewrite-url', 'x-forwarded-prefix', 'x-forwarded-uri', 'x-forwarded-path', 'x-original-host',
  // The mount prefix the common WSGI reverse-proxy recipes (Flask's, Werkzeug's ProxyFix companions) take into SCRIPT_NAME.
  'x-script-name',
];
const UNTRUSTED_SET = new Set<string>(UNTRUSTED);

/**
 * Client-certificate fields a TLS-terminating proxy adds for its backend, passed on only from trusted proxies:
 * RFC 9440 Client-Cert(-Chain); X-Client-Cert*, X-SSL-Client-* / SSL-Client-* (nginx, HAProxy, Apache, F5,
 * Google Cloud load balancers); X-Forwarded-Tls-Client-Cert(-Info) (Traefik); X-Amzn-Mtls-Clientcert* (AWS
 * ALB); CloudFront-Viewer-Cert-*; Cf-Cert-* / Cf-Client-Cert-* (Cloudflare); X-ARR-ClientCert (Azure).
 * Envoy's X-Forwarded-Client-Cert has its own rule (`tls.trustXfccFrom`). Matched by family, since each proxy
 * names its fields in its own way.
 */
const CLIENT_CERT = /^(?:x-)?(?:ssl-client|ssl-cert|client-cert|client-verify|amzn-mtls-|forwarded-tls-client-|arr-clientcert)|^cf-(?:client-)?cert|^cloudfront-viewer-cert/;

/** The fields of the family above that gateways clear by name (a gateway cannot clear a family: removalList). */
const CLIENT_CERT_NAMED = [
  'client-cert', 'client-cert-chain', 'x-client-cert', 'x-client-verify', 'x-ssl-client-cert', 'x-ssl-client-verify', 'x-ssl-client-dn',
  'x-ssl-client-s-dn', 'x-ssl-client-i-dn', 'x-ssl-cert', 'ssl-client-cert', 'ssl-client-verify', 'x-forwarded-tls-client-cert',
  'x-forwarded-tls-client-cert-info', 'x-amzn-mtls-clientcert', 'x-amzn-mtls-clientcert-leaf', 'x-arr-clientcert',
];

const FATES = new Map<string, Fate>([
  ...HOP_BY_HOP.map((n) => [n, DROP] as const),
  ...IDENTITY_HEADERS.map((n) => [n, DROP] as const),
  ...METHOD_OVERRIDES.map((n) => [n, DROP] as const),
  ['x-api-key', DROP], ['x-request-id', DROP], ['x-forwarded-port', DROP],
  ['connection', CONNECTION], ['host', HOST], ['authorization', AUTHORIZATION],
  ['x-forwarded-for', FORWARDED_FOR], ['x-forwarded-proto', FORWARDED_PROTO], ['x-forwarded-host', FORWARDED_HOST],
  ['x-forwarded-client-cert', XFCC],
  ['sec-websocket-protocol', SUBPROTOCOLS],
]);

/**
 * CGI meta-variables (RFC 3875 §4.1, and the REQUEST_URI / RAW_URI servers add), hyphenated. gunicorn takes a
 * `SCRIPT_NAME` field as the request's SCRIPT_NAME from the peers in its `forwarded_allow_ips` (127.0.0.1 by
 * default: a sidecar keygate), and `PATH_INFO` or `REMOTE_USER` when listed in `forwarder_headers`: the
 * application then routes on the path minus that prefix, or takes that user, while the signature covers the whole
 * path keygate authorised. Only the `_` spelling names the variable, so only it goes (isUnderscoreSpelling).
 */
const CGI_VARIABLES = new Set([
  'auth-type', 'content-length', 'content-type', 'gateway-interface', 'path-info', 'path-translated', 'query-string', 'remote-addr', 'remote-host',
  'remote-ident', 'remote-user', 'request-method', 'script-name', 'server-name', 'server-port', 'server-protocol', 'server-software', 'request-uri',
  'raw-uri', 'document-uri',
]);

/**
 * Whether a name written with `_` is a spelling of a field this rule removes, or of a CGI variable. CGI and WSGI
 * servers (PHP, Werkzeug, Django, Rack) fold `_` and `-` into one, so `X_Api_Key_Permissions` reaches the
 * application as the field keygate sets, and gunicorn reads `SCRIPT_NAME` as the variable itself: such spellings
 * never travel on, from any peer (no proxy has a reason to send them).
 */
function isUnderscoreSpelling(lower: string): boolean {
  const folded = lower.replaceAll('_', '-');
  return FATES.has(folded) || UNTRUSTED_SET.has(folded) || CLIENT_CERT.test(folded) || CGI_VARIABLES.has(folded);
}

/**
 * What becomes of one client field (`lower`: its name in lower case), `fromProxy` when the peer is in
 * `server.trustedProxies`. Cheap first: most fields are neither named here nor spelt with `_`.
 */
export function fateOf(lower: string, fromProxy: boolean): Fate {
  const fate = FATES.get(lower);
  if (fate !== undefined) return fate;
  if (lower.includes('_')) return isUnderscoreSpelling(lower) ? DROP : KEEP;
  if (!fromProxy && (UNTRUSTED_SET.has(lower) || CLIENT_CERT.test(lower))) return DROP;
  return KEEP;
}

/** `Authorization: Bearer <token>`, up to the token (RFC 6750 §2.1; the scheme is case-insensitive). */
const BEARER_SCHEME = /^[ \t]*bearer[ \t]+/i;

/**
 * Whether an Authorization field goes: when it carried the credential that authenticated, and whenever it is a
 * Bearer holding a keygate key (of any type: a second key beside the one that authenticated never travels on).
 * Any other Authorization (Basic, or a Bearer token of the upstream's own) belongs to the upstream and stays:
 * keygate cannot tell it from the upstream's own credential, and removing it would break upstreams that
 * authenticate their users behind keygate.
 */
export function dropsAuthorization(value: string, usedBearer: boolean, keyPrefixes: readonly string[]): boolean {
  if (usedBearer) return true;
  const scheme = BEARER_SCHEME.exec(value);
  if (!scheme) return false;
  for (const prefix of keyPrefixes) if (value.startsWith(prefix, scheme[0].length)) return true;
  return false;
}

/**
 * The fields gateways clear by name on every request (docs/gateways/ configures nginx and Caddy to clear each;
 * keygate lists them to Envoy): the key, method overrides, the untrusted forwarding, path-override and
 * client-certificate fields, and X-Forwarded-Host/-Port (a gateway sets or clears them; keygate sets its own).
 * X-Forwarded-For and -Proto are the gateway's own, as are the identity fields it sets from keygate's answer.
 */
export const NAMED_REMOVALS: readonly string[] = [
  'x-api-key', ...METHOD_OVERRIDES, ...UNTRUSTED, ...CLIENT_CERT_NAMED, 'x-forwarded-client-cert', 'x-forwarded-host', 'x-forwarded-port',
];
const NAMED_SET = new Set(NAMED_REMOVALS);

export interface RemovalContext {
  /** The gateway's client is in `server.trustedProxies`: its forwarding and certificate fields are believed. */
  fromProxy: boolean;
  /** The gateway itself is in `tls.trustXfccFrom`: the X-Forwarded-Client-Cert it sends is its own. */
  keepXfcc: boolean;
  /** The credential that authenticated was the Bearer (false when none did: a preflight). */
  usedBearer: boolean;
  keyPrefixes: readonly string[];
  /** Lower-case names the answer sets: a gateway replaces those itself, and Envoy removes after it sets. */
  sets: ReadonlySet<string>;
  /** Lower-case names of the check's own fields (the original method and URI a gateway describes): not the client's. */
  own: ReadonlySet<string>;
}

/**
 * The request fields a gateway must remove before it forwards the original request, as lower-case names: the
 * named ones always, and every field of the check the rule drops (an underscore spelling, a client-certificate
 * field outside the named list, Authorization when it holds a key). `unnamed` receives the dropped fields a
 * gateway cannot be configured to clear by name (not in NAMED_REMOVALS): nginx and Caddy, which clear only the
 * named list, refuse such a request; Envoy removes whatever the list says.
 */
export function removalList(raw: readonly string[], ctx: RemovalContext, unnamed: string[] | null): string[] {
  const out = new Set<string>();
  for (const name of NAMED_REMOVALS) {
    if (ctx.sets.has(name)) continue;
    if (ctx.fromProxy && !FATES.has(name)) continue; // forwarding, path-override and certificate fields of a trusted proxy
    if (name === 'x-forwarded-client-cert' && ctx.keepXfcc) continue;
    out.add(name);
  }
  for (const name of IDENTITY_HEADERS) if (!ctx.sets.has(name)) out.add(name);
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (out.has(lower) || ctx.sets.has(lower) || ctx.own.has(lower)) continue;
    const fate = fateOf(lower, ctx.fromProxy);
    const drop = fate === DROP ? !HOP_BY_HOP.includes(lower) : fate === AUTHORIZATION && dropsAuthorization(raw[i + 1]!, ctx.usedBearer, ctx.keyPrefixes);
    if (!drop) continue;
    out.add(lower);
    if (unnamed !== null && lower !== 'authorization' && !NAMED_SET.has(lower) && !(IDENTITY_HEADERS as readonly string[]).includes(lower)) unnamed.push(raw[i]!);
  }
  return [...out];
}
