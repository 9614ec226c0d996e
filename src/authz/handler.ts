import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { offersCredential } from '../auth/credential.ts';
import { isPreflight, preflightFields } from '../auth/origin.ts';
import type { Door, Grant, Outcome, Refusal } from '../auth/pipeline.ts';
import { refuse } from '../auth/verify.ts';
import type { Config } from '../config/schema.ts';
import { declaresBody } from '../http/body.ts';
import { answerClientError } from '../http/client-error.ts';
import { contains } from '../http/client-ip.ts';
import { asciiJson } from '../http/ascii-json.ts';
import { errorResponse, type ErrorCode } from '../http/errors.ts';
import { createServer } from '../http/node-http.ts';
import { requestIdOf } from '../http/request-id.ts';
import { canonicalTarget, isRefusal, type Target } from '../http/target.ts';
import { throttledWarn, type AccessLog } from '../ops/logger.ts';
import type { Tracing } from '../ops/tracing.ts';
import { createGate, createRecorder, type GateDeps } from '../decision/gate.ts';
import { RequestScope } from '../decision/scope.ts';
import { identityFields } from '../decision/headers.ts';
import { removalList, type RemovalContext } from '../decision/strip.ts';
import { carriesQueryKey, gatewayClientIp, gatewayPeerOf, isOriginalRefusal, isWebSocketCheck, originalOf, type CheckForm } from './original.ts';

// The authorizer listener: a gateway asks whether a request may pass, and keygate answers with the
// same gate the inline proxy runs (decision/gate.ts) on the original request rebuilt from the check
// (authz/original.ts): canonical target, IP block, credential, key status, mTLS from trusted XFCC, origin,
// route policy, assistant rules, rate limits, usage, failed attempts. Allowed: 200 with the identity headers
// for the gateway to copy upstream. Refused: the documented status and envelope, which Envoy, Traefik and Caddy
// pass to the client as they are; nginx turns any status but 401 and 403 into 500, so the envelope also rides
// in `X-Keygate-Error` for its `error_page` to answer with (docs/gateways/nginx.conf).
//
// The check request itself becomes the original request: its method and URL are replaced by the original's
// and everything downstream reads it as the proxy reads a client's. It lives only for this decision.

export interface AuthzDeps extends GateDeps {
  trustedGateways: BlockList;
  trustedProxies: BlockList | null;
  /** `tls.trustXfccFrom`: a gateway listed there sets X-Forwarded-Client-Cert itself, which then stays. */
  xfccFrom: BlockList | null;
  /** The key prefixes and the session tokens' prefix: an Authorization holding any of them is removed. */
  keyPrefixes: readonly string[];
  signingSecret: string | null;
  requestBody: boolean;
  websocket: Config['authz']['websocket'];
  access: AccessLog;
  tracing: Tracing | null;
}

const WEBSOCKET_INLINE = 'WebSocket sessions need keygate as the proxy (session caps and closing sessions on revocation); route this path to keygate, not through the authorizer.';
const noSessionCap = refuse('inline_proxy_required', 'This API key caps its WebSocket sessions or their minutes, which only keygate as the proxy can enforce; route this path to keygate, not through the authorizer.');
const queryKey = refuse('malformed_request', 'Send the API key in the X-API-Key header: through a gateway, a key in the query would reach the upstream.');
const subprotocolKey = refuse('malformed_request', 'Send the key or session token in X-API-Key or as Authorization: Bearer: through a gateway, one offered in Sec-WebSocket-Protocol would reach the upstream.');
const otherUpgrade = refuse('malformed_request', 'Only WebSocket upgrades are supported.');
const notCanonical = refuse('malformed_request', 'The request path is not in canonical form (an escape of a character that needs none, like %61, or lower-case hex); send it as it would be forwarded.');


/**
 * Headers the gateway removes from the original request before forwarding it (decision/strip.ts): Envoy reads
 * this one itself, after setting the allowed ones, so it never lists a header the answer sets; the nginx and
 * Caddy configurations clear the named part of the rule themselves and read Authorization's fate from it.
 */
const STRIP = 'X-Envoy-Auth-Headers-To-Remove';
const SETS_SIGNED = new Set(['x-tenant-id', 'x-api-key-id', 'x-api-key-type', 'x-api-key-permissions', 'x-request-id', 'x-keygate-signature']);
const SETS_UNSIGNED = new Set(['x-tenant-id', 'x-api-key-id', 'x-api-key-type', 'x-api-key-permissions', 'x-request-id']);
/** A preflight is answered without an identity: only X-Request-Id is set. */
const SETS_NONE = new Set(['x-request-id']);
/** Each form's own fields: what the gateway says about the original request, not the client's. */
const OWN: Record<CheckForm, ReadonlySet<string>> = {
  'auth-request': new Set(['x-original-method', 'x-original-uri']),
  'forward-auth': new Set(['x-forwarded-method', 'x-forwarded-uri', 'x-forwarded-host']),
  'ext-authz': new Set(['x-envoy-auth-partial-body']),
};
const emptyPreflightField = refuse('malformed_request', 'A CORS preflight needs a value in Origin and in Access-Control-Request-Method; send them without an empty one.');
/** An Origin or Access-Control-Request-Method field without a value, which nginx cannot tell from no field. */
function hasEmptyPreflightField(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if ((name === 'origin' || name === 'access-control-request-method') && raw[i + 1] === '') return true;
  }
  return false;
}
const unclearable = (names: string[]) =>
  refuse('malformed_request', `The request carries ${names.join(', ')}, which keygate would remove and this gateway's configuration cannot (docs/gateways/); send it without.`);

export function createAuthzHandler(deps: AuthzDeps) {
  const { usage, metrics, signingSecret } = deps;
  const record = createRecorder('authz', metrics, deps.access);
  const warnUntrusted = throttledWarn(deps.logger, 'authorizer called by a peer outside authz.trustedGateways');

  /**
   * With `authz.websocket: handshake`, a key that caps its sessions or their minutes asks for what the authorizer
   * cannot enforce: the gateway reports neither when a session ends nor how long it lasted.
   */
  function withoutSessionCaps(outcome: Outcome): Outcome {
    if (!outcome.ok) return outcome;
    const { maxConcurrentConnections, quota } = outcome.identity.key.policy;
    return maxConcurrentConnections !== null || quota.sessionMinutesPerMonth !== null ? { ...noSessionCap, identity: outcome.identity } : outcome;
  }
  const pipeline = (req: IncomingMessage, target: Target, door: Door): Outcome | Promise<Outcome> => {
    const outcome = deps.pipeline(req, target, door);
    if (door !== 'upgrade') return outcome;
    return outcome instanceof Promise ? outcome.then(withoutSessionCaps) : withoutSessionCaps(outcome);
  };

  /** Who the check's client is, for the removal rule; the identity's part (the Bearer) is filled in when allowed. */
  const contexts = new WeakMap<IncomingMessage, RemovalContext>();

  function allow(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant): void {
    const { key, tenant, credential } = grant.identity;
    usage.record(tenant.id, key.id, 'allowed');
    const fields = scope.responseHeaders; // X-Request-Id, RateLimit-*, CORS
    // The gateway forwards to the upstream's own path: the signature covers the canonical path as it is.
    const start = fields.length;
    identityFields(fields, grant.identity, req.method ?? 'GET', scope.target!.path, signingSecret);
    // What the inline proxy would not forward (decision/strip.ts), for the gateway to remove: never a field
    // the answer sets (Envoy removes after it sets).
    const sets = new Set<string>(['x-request-id']);
    for (let i = start; i < fields.length; i += 2) sets.add(fields[i]!);
    const ctx = { ...contexts.get(req)!, usedBearer: credential.source === 'bearer', sets };
    fields.push(STRIP, removalList(req.rawHeaders, ctx, null).join(', '), 'Cache-Control', 'no-store', 'Content-Length', '0');
    metrics.authDuration.observe((performance.now() - scope.started) / 1000);
    res.writeHead(200, fields);
    res.end();
  }

  function send(req: IncomingMessage, res: ServerResponse, scope: RequestScope, code: ErrorCode, message: string, headers?: Record<string, string>): void {
    if (res.headersSent) return void res.destroy();
    // An unread body (Envoy's with_request_body on a refused check) cannot be left in the connection.
    if (!req.readableEnded && declaresBody(req)) headers = { ...headers, Connection: 'close' };
    const r = errorResponse(scope.requestId, code, message, { headers });
    // JSON on one line, and ASCII with any other character escaped: a valid field value.
    res.writeHead(r.status, { ...r.headers, 'X-Keygate-Error': asciiJson(r.body) });
    res.end(r.body);
  }

  const gate = createGate({ ...deps, pipeline }, { pass: allow, send });
  const answerRefusal = (req: IncomingMessage, res: ServerResponse, scope: RequestScope, code: ErrorCode, message: string) => gate.refuse(req, res, scope, { ok: false, code, message } satisfies Refusal);

  return function handleAuthz(req: IncomingMessage, res: ServerResponse): void {
    const scope = new RequestScope(requestIdOf(req));
    res.on('close', () => record(req, res, scope));
    if (deps.tracing !== null) scope.trace = deps.tracing.request(req);
    const peer = req.socket.remoteAddress ?? '';
    scope.clientIp = peer;
    if (!contains(deps.trustedGateways, peer)) {
      warnUntrusted({ peer, requestId: scope.requestId });
      return answerRefusal(req, res, scope, 'gateway_not_trusted', 'Only the gateways in authz.trustedGateways may ask this listener.');
    }
    const original = originalOf(req);
    if (isOriginalRefusal(original)) return answerRefusal(req, res, scope, original.code, original.message);
    const clientHop = gatewayPeerOf(req);
    const ctx: RemovalContext = {
      fromProxy: deps.trustedProxies !== null && clientHop !== null && contains(deps.trustedProxies, clientHop),
      keepXfcc: deps.xfccFrom !== null && contains(deps.xfccFrom, peer),
      usedBearer: false,
      keyPrefixes: deps.keyPrefixes,
      sets: signingSecret ? SETS_SIGNED : SETS_UNSIGNED,
      own: OWN[original.form],
    };
    contexts.set(req, ctx);
    req.method = original.method;
    req.url = original.uri;
    const target = canonicalTarget(original.uri);
    if (isRefusal(target)) return answerRefusal(req, res, scope, 'malformed_request', target.refused);
    scope.target = target;
    if (carriesQueryKey(original.uri)) return gate.refuse(req, res, scope, queryKey);
    // A credential among the subprotocols (auth/credential.ts): the inline proxy removes it before the upstream; a
    // gateway forwards Sec-WebSocket-Protocol as the client sent it and cannot remove one member of the list.
    if (offersCredential(req.headers['sec-websocket-protocol'], deps.keyPrefixes)) return gate.refuse(req, res, scope, subprotocolKey);
    // The inline proxy forwards the canonical target; a gateway forwards the URI as it came. So that the policy
    // decides on exactly what the upstream routes, only a URI that is already canonical passes.
    if (target.url !== original.uri) return gate.refuse(req, res, scope, notCanonical);
    // nginx and Caddy clear the named fields of the removal rule; a field the rule removes by family or spelling
    // (an underscore spelling, an unnamed client-certificate field) they cannot, so such a request is refused.
    // Envoy removes whatever the answer lists.
    if (original.form !== 'ext-authz') {
      const unnamed: string[] = [];
      removalList(req.rawHeaders, ctx, unnamed);
      if (unnamed.length) return gate.refuse(req, res, scope, unclearable(unnamed));
    }
    if (isPreflight(req)) {
      // nginx tells a preflight by its Origin and Access-Control-Request-Method and answers it from here rather than
      // forward it; it sees no empty field, so a preflight carrying one would be forwarded on this 200: refused.
      if (original.form === 'auth-request' && hasEmptyPreflightField(req.rawHeaders)) return gate.refuse(req, res, scope, emptyPreflightField);
      // Answered without a key, as the inline proxy answers it: nginx and Caddy answer the client with this rather
      // than forward the preflight (docs/gateways/); Envoy copies the CORS fields. No
      // identity travels with it, so a client's copies of the identity headers are to be removed.
      scope.decision = 'preflight';
      const strip = removalList(req.rawHeaders, { ...ctx, sets: SETS_NONE }, null).join(', ');
      res.writeHead(200, { ...preflightFields(req, scope.requestId), [STRIP]: strip, 'Cache-Control': 'no-store', 'Content-Length': '0' });
      return void res.end();
    }
    // Another Upgrade than WebSocket would switch the upstream's connection to a protocol no check sees again (a
    // tunnel); keygate's own proxy refuses it with the same answer (proxy/ws-handshake.ts).
    const upgrade = req.headers.upgrade;
    if (upgrade !== undefined && upgrade.toLowerCase() !== 'websocket') return gate.refuse(req, res, scope, otherUpgrade);
    if (isWebSocketCheck(req.headers)) {
      if (deps.websocket === 'refuse') return answerRefusal(req, res, scope, 'inline_proxy_required', WEBSOCKET_INLINE);
      scope.door = 'upgrade';
    } else {
      // The body is decided on only when the gateway sends it whole: Envoy with with_request_body flags every
      // check `x-envoy-auth-partial-body: false` (or `true` for a cut one). Without the flag there is no body.
      const whole = deps.requestBody && original.form === 'ext-authz' && req.headers['x-envoy-auth-partial-body'] === 'false';
      scope.door = whole ? 'proxy' : 'check';
    }
    scope.clientIp = gatewayClientIp(req, deps.trustedProxies);
    gate.enter(req, res, scope);
  };
}

/** The authorizer listener (plain HTTP; node answers a check that asks to upgrade as a plain request). */
export function createAuthzServer(deps: AuthzDeps): Server {
  const server = createServer(createAuthzHandler(deps));
  server.on('clientError', answerClientError);
  // Slow-loris protection, as on the public listener.
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 65_000;
  return server;
}
