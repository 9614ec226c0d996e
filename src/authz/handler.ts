import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { isPreflight, preflightFields } from '../auth/origin.ts';
import type { Door, Grant, Outcome, Refusal } from '../auth/pipeline.ts';
import { deny } from '../auth/verify.ts';
import type { Config } from '../config/schema.ts';
import { contains } from '../http/client-ip.ts';
import { errorResponse, type ErrorCode } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import { canonicalTarget, isRefusal, type Target } from '../http/target.ts';
import { metadataHeader } from '../keys/session-token.ts';
import { throttledWarn, type AccessLog } from '../ops/logger.ts';
import type { Tracing } from '../ops/tracing.ts';
import { createGate, createRecorder, type GateDeps } from '../proxy/gate.ts';
import { IDENTITY_HEADERS } from '../proxy/headers.ts';
import { RequestScope } from '../proxy/scope.ts';
import { sign } from '../proxy/signature.ts';
import { carriesQueryKey, gatewayClientIp, isOriginalRefusal, isWebSocketCheck, originalOf } from './original.ts';

// The authorizer listener (issue 16): a gateway asks whether a request may pass, and keygate answers with the
// same gate the inline proxy runs (proxy/gate.ts) on the original request rebuilt from the check
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
  signingSecret: string | null;
  requestBody: boolean;
  websocket: Config['authz']['websocket'];
  access: AccessLog;
  tracing: Tracing | null;
}

const WEBSOCKET_INLINE = 'WebSocket sessions need keygate as the proxy (session caps and closing sessions on revocation); route this path to keygate, not through the authorizer.';
const noSessionCap = deny('inline_proxy_required', 'This API key caps its WebSocket sessions or their minutes, which only keygate as the proxy can enforce; route this path to keygate, not through the authorizer.');
const queryKey = deny('malformed_request', 'Send the API key in the X-API-Key header: through a gateway, a key in the query would reach the upstream.');
const notCanonical = deny('malformed_request', 'The request path is not in canonical form (an escape of a character that needs none, like %61, or lower-case hex); send it as it would be forwarded.');

const asciiJson = (json: string): string => json.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * Headers the gateway removes from the original request before forwarding it (Envoy reads this one itself,
 * after setting the allowed ones: it never lists a header keygate sets).
 */
const STRIP = 'X-Envoy-Auth-Headers-To-Remove';
const UNIDENTIFIED = IDENTITY_HEADERS.join(', ');

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

  function allow(req: IncomingMessage, res: ServerResponse, scope: RequestScope, grant: Grant): void {
    const { key, tenant, credential } = grant.identity;
    usage.record(tenant.id, key.id, 'allowed');
    const fields = scope.responseHeaders; // X-Request-Id, RateLimit-*, CORS
    fields.push('X-Tenant-Id', tenant.id, 'X-Api-Key-Id', key.id, 'X-Api-Key-Type', grant.identity.policy.keyType, 'X-Api-Key-Permissions', grant.identity.policy.permissionsHeader);
    const token = grant.identity.token;
    if (token) {
      fields.push('X-Session-Token-Id', token.id);
      const metadata = metadataHeader(token);
      if (metadata !== null) fields.push('X-Session-Token-Metadata', metadata);
    }
    if (signingSecret) fields.push('X-Keygate-Signature', sign(signingSecret, { method: req.method ?? 'GET', path: scope.target!.path, tenantId: tenant.id, keyId: key.id }));
    // What the inline proxy would not forward: the key, and a client's signature when keygate signs nothing.
    const strip = ['x-api-key'];
    if (credential.source === 'bearer') strip.push('authorization');
    if (!signingSecret) strip.push('x-keygate-signature');
    fields.push(STRIP, strip.join(', '), 'Cache-Control', 'no-store', 'Content-Length', '0');
    metrics.authDuration.observe((performance.now() - scope.started) / 1000);
    res.writeHead(200, fields);
    res.end();
  }

  function send(res: ServerResponse, scope: RequestScope, code: ErrorCode, message: string, headers?: Record<string, string>): void {
    if (res.headersSent) return void res.destroy();
    const r = errorResponse(scope.requestId, code, message, { headers });
    // JSON on one line, and ASCII with any other character escaped: a valid field value.
    res.writeHead(r.status, { ...r.headers, 'X-Keygate-Error': asciiJson(r.body) });
    res.end(r.body);
  }

  const gate = createGate({ ...deps, pipeline }, { pass: allow, send });
  const refuse = (req: IncomingMessage, res: ServerResponse, scope: RequestScope, code: ErrorCode, message: string) => gate.refuse(req, res, scope, { ok: false, code, message } satisfies Refusal);

  return function handleAuthz(req: IncomingMessage, res: ServerResponse): void {
    const scope = new RequestScope(requestIdOf(req));
    res.on('close', () => record(req, res, scope));
    if (deps.tracing !== null) scope.trace = deps.tracing.request(req);
    const peer = req.socket.remoteAddress ?? '';
    scope.clientIp = peer;
    if (!contains(deps.trustedGateways, peer)) {
      warnUntrusted({ peer, requestId: scope.requestId });
      return refuse(req, res, scope, 'gateway_not_trusted', 'Only the gateways in authz.trustedGateways may ask this listener.');
    }
    const original = originalOf(req);
    if (isOriginalRefusal(original)) return refuse(req, res, scope, original.code, original.message);
    req.method = original.method;
    req.url = original.uri;
    const target = canonicalTarget(original.uri);
    if (isRefusal(target)) return refuse(req, res, scope, 'malformed_request', target.refused);
    scope.target = target;
    if (carriesQueryKey(original.uri)) return gate.refuse(req, res, scope, queryKey);
    // The inline proxy forwards the canonical target; a gateway forwards the URI as it came. So that the policy
    // decides on exactly what the upstream routes, only a URI that is already canonical passes.
    if (target.url !== original.uri) return gate.refuse(req, res, scope, notCanonical);
    if (isPreflight(req)) {
      // Answered without a key, as the inline proxy answers it; the gateway may copy the CORS fields. No
      // identity travels with it, so a client's copies of the identity headers are to be removed.
      scope.decision = 'preflight';
      res.writeHead(200, { ...preflightFields(req, scope.requestId), [STRIP]: UNIDENTIFIED, 'Cache-Control': 'no-store', 'Content-Length': '0' });
      return void res.end();
    }
    if (isWebSocketCheck(req.headers)) {
      if (deps.websocket === 'refuse') return refuse(req, res, scope, 'inline_proxy_required', WEBSOCKET_INLINE);
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
  // Slow-loris protection, as on the public listener.
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 65_000;
  return server;
}
