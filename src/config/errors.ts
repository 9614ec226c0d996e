// What a configuration problem looks like, apart from load.ts: `serve` reports problems from its long-running
// process, which never loads the loader itself (zod, yaml and the schema run in the short-lived process that
// checks the configuration: server/serve-config.ts).

export interface ConfigProblem {
  path: string;
  message: string;
}

/** Start-up configuration failure; `main` prints every problem and exits with EX_CONFIG (78). */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p.path}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const EX_CONFIG = 78;
