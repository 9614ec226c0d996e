import type { Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createAuthzServer } from '../authz/handler.ts';
import type { Config } from '../config/schema.ts';
import type { TlsFiles } from '../config/tls-files.ts';
import { basePathOf, upstreamHostOf } from '../decision/headers.ts';
import { answerClientError } from '../http/client-error.ts';
import { compileCidrs } from '../http/client-ip.ts';
import { createServer } from '../http/node-http.ts';
import { SESSION_TOKEN_PREFIX } from '../keys/session-token.ts';
import { createForwarder } from '../proxy/forward.ts';
import { createPublicHandler } from '../proxy/public-handler.ts';
import { createWebSocketProxy } from '../proxy/websocket.ts';
import type { Core, Parts } from './wiring.ts';

// The listeners: the internal one (probes and the management APIs), the public one (the proxy's HTTP and
// WebSocket doors, over TLS when configured) and the authorizer for an existing gateway. Each is created with the
// door it serves and listening when its function resolves.

const listenOn = (server: Server, port: number, host: string) =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });

/** The internal listener, up before anything else: the probes answer from the start, `/readyz` 503 "starting". */
export async function listenInternal(config: Config, core: Core): Promise<{ server: Server; port: number }> {
  const internalApi = core.management('internal');
  const server = createServer((req, res) => {
    if (!core.probe(req, res)) internalApi(req, res);
  });
  const port = await listenOn(server, config.server.opsPort, config.server.opsHost);
  core.logger.info({ opsPort: port }, 'internal listener up');
  return { server, port };
}

/** The public listener with its two doors (HTTP and the WebSocket upgrade), listening. */
export async function listenPublic(config: Config, core: Core, parts: Parts, tls: TlsFiles) {
  const { metrics, logger, access, tracing } = core;
  const { pipeline, cache, usage, trustedProxies, xfccFrom } = parts;
  const { limits, failures, slots, sessionQuota } = parts.limits;
  const upstreamTls = tls.upstream;
  const forwarder = createForwarder({ target: config.upstream.url, timeoutMs: config.upstream.timeoutMs, maxSockets: config.upstream.maxSockets, maxQueue: config.upstream.maxQueue, plans: config.plans, metrics, tls: upstreamTls });
  const encrypted = Boolean(config.tls.cert);
  const identityHeaders = { trustedProxies, xfccFrom, encrypted, signingSecret: config.upstream.signingSecret, basePath: basePathOf(config.upstream.url), keyPrefixes: keyPrefixesOf(config), upstreamHost: upstreamHostOf(config.upstream.url, config.upstream.preserveHost) };
  const handlePublic = createPublicHandler({
    management: core.management('public'),
    managementBodyTimeoutMs: config.server.managementBodyTimeoutMs,
    pipeline,
    limits,
    failures,
    usage,
    forwarder,
    ...identityHeaders,
    metrics,
    logger,
    access,
    tracing,
  });
  const websockets = createWebSocketProxy({
    pipeline,
    limits,
    failures,
    slots,
    sessionQuota,
    cache,
    usage,
    plans: config.plans,
    upstreamUrl: config.upstream.url,
    timeoutMs: config.upstream.timeoutMs,
    revalidateSeconds: config.websocket.revalidateSeconds,
    maxPayloadBytes: config.websocket.maxPayloadBytes,
    upstreamTls,
    pingIntervalSeconds: config.websocket.pingIntervalSeconds,
    idleTimeoutSeconds: config.websocket.idleTimeoutSeconds,
    ...identityHeaders,
    metrics,
    logger,
    tracing,
    access,
    sessionLog: core.sessionLog,
  });
  await cache.attach(websockets).catch((err: unknown) => logger.warn({ err }, 'cache invalidation subscription pending'));

  const server: Server = encrypted
    ? createTlsServer(
        {
          cert: tls.listener.cert,
          key: tls.listener.key,
          // Requested, not required: only keys with enforceMtls need a certificate (docs/concepts.md).
          ...(tls.listener.ca ? { ca: tls.listener.ca, requestCert: true, rejectUnauthorized: false } : {}),
        },
        handlePublic,
      )
    : createServer(handlePublic);
  server.on('upgrade', websockets.handleUpgrade);
  server.on('clientError', answerClientError);
  // Slow-loris protection without cutting long streams: headers must arrive promptly.
  server.headersTimeout = 20_000;
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  const port = await listenOn(server, config.server.port, config.server.host);
  return { server, port, forwarder, websockets };
}

/** The authorizer for an existing gateway, listening, when `server.authzPort` is set; otherwise null. */
export async function listenAuthorizer(config: Config, core: Core, parts: Parts): Promise<{ server: Server; port: number } | null> {
  if (config.server.authzPort === null) return null;
  const { metrics, logger, access, tracing } = core;
  const server = createAuthzServer({
    pipeline: parts.pipeline,
    limits: parts.limits.limits,
    failures: parts.limits.failures,
    usage: parts.usage,
    metrics,
    logger,
    access,
    tracing,
    trustedGateways: compileCidrs(config.authz.trustedGateways),
    trustedProxies: parts.trustedProxies,
    xfccFrom: parts.xfccFrom,
    keyPrefixes: keyPrefixesOf(config),
    signingSecret: config.upstream.signingSecret,
    requestBody: config.authz.requestBody,
    websocket: config.authz.websocket,
  });
  return { server, port: await listenOn(server, config.server.authzPort, config.server.authzHost) };
}

/** Every credential prefix keygate recognises, so every door strips each credential copy a client sends. */
const keyPrefixesOf = (config: Config): string[] => [config.keys.privatePrefix, config.keys.publicPrefix, SESSION_TOKEN_PREFIX];
