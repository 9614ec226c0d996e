import { loadPolicy } from '../auth/policy.ts';
import { ConfigError, EX_CONFIG, inspectConfig, loadConfig, type ConfigProblem } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { startKeygate } from './app.ts';
import { keepMemoryReducerArmed } from './memory-reducer.ts';

/** Loads the configuration or exits 78 listing every problem. */
export function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) exitWith(err.problems);
    throw err;
  }
}

function exitWith(problems: ConfigProblem[]): never {
  process.stderr.write(`keygate: ${new ConfigError(problems).message}\n`);
  process.exit(EX_CONFIG);
}

/**
 * `keygate config check`: everything `serve` refuses at start-up with 78 — the configuration and the route
 * policy file it names — in one pass, so a configuration that passes the check starts and one that fails lists
 * every problem at once (an invalid option is checked further with its default in its place).
 */
export function checkedConfigOrExit(): Config {
  const { problems, config } = inspectConfig();
  if (config) {
    try {
      loadPolicy(config.policy.file);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (problems.length || !config) exitWith(problems);
  return config;
}

/** `keygate serve`: listen on both ports; SIGTERM/SIGINT drain and exit 0. */
export async function serve(): Promise<void> {
  keepMemoryReducerArmed();
  const config = configOrExit();
  // server.workers > 1: this process supervises the workers, each of which runs the rest of serve().
  const group = config.server.workers === 1 ? null : await import('./workers.ts');
  if (group?.isPrimary()) {
    const count = group.workerCount(config.server.workers);
    // The policy file is checked once here, so a bad one exits 78 instead of failing in every worker.
    if (count > 1) return group.supervise(checkedConfigOrExit(), count);
  }
  const kg = await startKeygate(config);
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
