import { readPolicySpec } from '../auth/policy-file.ts';
import type { PolicySpec } from '../auth/policy.ts';
import { ConfigError, inspectConfig, loadConfig, readConfigFile, type ConfigProblem, type ReadFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { readTlsFiles, type TlsFiles } from '../config/tls-files.ts';
import { exitWith, type CheckAnswer } from './serve-config.ts';

// Checking the configuration in this process, for the commands that run briefly (`config check`, the `--store`
// commands) and for the process `serve` starts to check its own (server/config-checker.ts).

/** Loads the configuration or exits 78 listing every problem. */
export function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) exitWith(err.problems);
    throw err;
  }
}

/**
 * Everything `serve` refuses at start-up with 78 — the configuration and the route policy file it names — in
 * one pass, so a configuration that passes the check starts and one that fails lists every problem at once (an
 * invalid option is checked further with its default in its place).
 */
export function inspectForServe(readFile?: ReadFile): { problems: ConfigProblem[]; config: Config | null; policy: PolicySpec | null; tls: TlsFiles | null } {
  const { problems, config } = inspectConfig(readFile ? { readFile } : {});
  let policy: PolicySpec | null = null;
  let tls: TlsFiles | null = null;
  if (config) {
    const read = readTlsFiles(config, readFile ?? readConfigFile);
    problems.push(...read.problems);
    tls = read.files;
    try {
      policy = readPolicySpec(config.policy.file, readFile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  return { problems, config, policy, tls };
}

/** What the configuration check process answers serve (server/serve-config.ts): the checked data (the TLS files' contents with it), or every problem. */
export function answerForServe(readFile?: ReadFile): CheckAnswer {
  const { problems, config, policy, tls } = inspectForServe(readFile);
  return problems.length || !config || !policy || !tls ? { problems } : { config, policy, tls };
}

/** `keygate config check`: the configuration as `serve` would run it, or exit 78 listing every problem. */
export function checkedConfigOrExit(): Config {
  const { problems, config } = inspectForServe();
  if (problems.length || !config) exitWith(problems);
  return config;
}
