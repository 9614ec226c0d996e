import type { PolicySpec } from '../auth/policy.ts';
import type { Config } from '../config/schema.ts';
import { tlsFilesOrThrow, type TlsFiles } from '../config/tls-files.ts';
import { gracefulStop, markReady } from './lifecycle.ts';
import { listenAuthorizer, listenInternal, listenPublic } from './listeners.ts';
import { wireCore, wireStore } from './wiring.ts';

export { version } from './wiring.ts';

/**
 * Starts keygate in the order Kubernetes probes expect: the internal listener first, answering
 * `/readyz` 503 "starting"; then the store, cache, auth pipeline and APIs; then the public listener, and only
 * then ready. `main.ts` handles signals and calls `shutdown()`. `policy` is the route policy file already read
 * and checked, and `tls` the TLS files' contents (serve's check hands both over); without them,
 * `config.policy.file` and the TLS files are read here.
 */
export async function startKeygate(config: Config, policy?: PolicySpec, tls?: TlsFiles) {
  const tlsFiles = tls ?? tlsFilesOrThrow(config);
  const core = await wireCore(config, policy);
  const internal = await listenInternal(config, core);
  const parts = await wireStore(config, core);
  const pub = await listenPublic(config, core, parts, tlsFiles);
  const authz = await listenAuthorizer(config, core, parts);
  markReady(core, parts);
  const servers = authz ? [pub.server, internal.server, authz.server] : [pub.server, internal.server];
  const { logger, metrics, adminToken, generatedAdminToken, drainLogs } = core;

  return {
    config,
    logger,
    metrics,
    store: parts.store,
    port: pub.port,
    opsPort: internal.port,
    /** The authorizer listener's port, or null when it is off. */
    authzPort: authz?.port ?? null,
    adminToken,
    generatedAdminToken,
    /** `quota.threshold` events, for delivery to subscribers. */
    quotaEvents: parts.limits.quotaEvents,
    /** Resolves once every log line so far is written. */
    drainLogs,
    /** Graceful stop (server/lifecycle.ts): drain, close the listeners, flush, close every resource. */
    shutdown: gracefulStop(config, core, parts, { servers, forwarder: pub.forwarder, websockets: pub.websockets }),
  };
}

export type Keygate = Awaited<ReturnType<typeof startKeygate>>;
