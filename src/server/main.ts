import { keepMemoryReducerArmed } from './memory-reducer.ts';
import { servedConfiguration } from './serve-config.ts';

/** `keygate serve`: listen on both ports; SIGTERM/SIGINT drain and exit 0. */
export async function serve(): Promise<void> {
  keepMemoryReducerArmed();
  // keygate's modules load while the configuration is checked (in a child process, or by a group's primary).
  const app = import('./app.ts');
  app.catch(() => {}); // a failure is reported where it is awaited, below
  const checked = await servedConfiguration();
  const { config } = checked;
  // server.workers > 1: this process supervises the workers, each of which runs the rest of serve().
  const group = config.server.workers === 1 ? null : await import('./workers.ts');
  if (group?.isPrimary()) {
    const count = group.workerCount(config.server.workers);
    // Checked once here: a bad policy file exits 78 instead of failing in every worker, and each worker asks
    // this process for the result instead of checking again.
    if (count > 1) return group.supervise(checked, count);
  }
  const kg = await (await app).startKeygate(config, checked.policy, checked.tls);
  const { port, opsPort, authzPort } = kg;
  kg.logger.info({ port, opsPort, ...(authzPort === null ? {} : { authzPort }), store: kg.store.kind, upstream: config.upstream.url }, 'keygate listening');
  if (kg.generatedAdminToken) {
    // Printed once, on stderr, outside the JSON log stream (so log shippers do not collect it).
    process.stderr.write(
      `\nkeygate: no admin token configured; generated one for this run:\n\n  ${kg.generatedAdminToken}\n\n` +
        `Set KEYGATE_ADMIN_TOKEN (or admin.token) to keep a stable token.\n\n`,
    );
  }
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) process.exit(1);
    kg.logger.info({ signal }, 'shutting down');
    kg.shutdown().then(
      () => {
        kg.logger.info('stopped');
        void kg.drainLogs().then(() => process.exit(0));
      },
      (err: unknown) => {
        kg.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (group && !group.isPrimary()) group.joinGroup(kg);
}
