#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ApiError } from '../http/errors.ts';
import { healthcheck } from './healthcheck.ts';

// Each command loads only what it needs: `healthcheck` runs every few seconds in the image and stays small.

const USAGE = `usage: keygate [command]

  serve                                   run the proxy (default)
  config check                            check the configuration and its route policy; print it, secrets redacted
  healthcheck                             exit 0 when this configuration's internal listener answers /healthz
  tenants create --name N [--plan P]      create a tenant; prints its first key once
  keys create --tenant T [--name N] [--type private|public] [--permissions a,b] [--expires-in-days D]
  keys list --tenant T
  keys revoke --tenant T --id K
  keys rotate --tenant T --id K [--grace-seconds S]
`;

const options = {
  name: { type: 'string' },
  plan: { type: 'string' },
  tenant: { type: 'string' },
  id: { type: 'string' },
  type: { type: 'string' },
  permissions: { type: 'string' },
  'expires-in-days': { type: 'string' },
  'grace-seconds': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true });
  const [command = 'serve', sub] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'serve') return (await import('./main.ts')).serve();
  if (command === 'config' && sub === 'check') {
    const [{ checkedConfigOrExit }, { redactConfig }] = await Promise.all([import('./main.ts'), import('../config/load.ts')]);
    process.stdout.write(`${JSON.stringify(redactConfig(checkedConfigOrExit()), null, 2)}\n`);
    return;
  }
  if (command === 'healthcheck') {
    process.exitCode = await healthcheck((line) => process.stderr.write(`${line}\n`));
    return;
  }
  if (!(await (await import('./manage.ts')).manage(command, sub, values))) {
    process.stderr.write(USAGE);
    process.exitCode = 64;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ApiError) {
    process.stderr.write(`keygate: ${err.code}: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`keygate: ${(err as Error).message}\n`);
  process.exit(1);
});
