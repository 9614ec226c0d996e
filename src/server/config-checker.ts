import { inspectForServe } from './config-check.ts';

// The process `keygate serve` starts to check its configuration (server/serve-config.ts): it reads and checks
// the configuration and the route policy file as `config check` does, sends the result to serve over the IPC
// channel, and exits. zod, yaml and the schema are loaded here and never in the process that serves.

const { problems, config, policy } = inspectForServe();
const answer = problems.length || !config || !policy ? { problems } : { config, policy };
process.send!(answer, () => process.disconnect());
