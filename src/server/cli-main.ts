import { parseArgs } from 'node:util';
import { ApiError } from '../http/errors.ts';
import { CliError, EXIT, print } from './cli-output.ts';

// Each command loads only what it needs: `healthcheck` runs every few seconds in the image and stays small, and
// `serve` never loads the admin commands' HTTP client (openapi-fetch) or the healthcheck, which stay in its
// memory for as long as it runs once imported.

const USAGE = `usage: keygate [command] [options]

Run keygate:
  serve                                   run keygate (default)
  config check                            check the configuration and its route policy (every problem at once);
                                          print the effective configuration, secrets redacted
  healthcheck                             exit 0 when this configuration's internal listener answers /healthz

Manage a running keygate (its admin API on the internal listener):
  tenants create --name N [--plan P]      create a tenant; prints its first key once
  tenants list | get --id T | suspend --id T | activate --id T | delete --id T
  keys create --tenant T [--name N] [--type private|public] [--permissions a,b] [--expires-in-days D]
  keys list --tenant T | get --tenant T --id K | revoke --tenant T --id K
  keys rotate --tenant T --id K [--grace-seconds S]
  tokens mint --tenant T --key K [--ttl S] [--permissions a,b] [--assistant A] [--max-sessions N] [--max-uses N]
                                          mint a session token with key K (platform-side minting)
  overview                                tenants, keys and today's requests

Options:
  --url URL          the internal listener (default: $KEYGATE_URL, else http://127.0.0.1:$OPS_PORT or :9090);
                     the admin token is read from $KEYGATE_ADMIN_TOKEN
  --json             print one JSON document (same as --output json)
  --output FORMAT    table (default) or json
  --store            bootstrap a Redis-backed fleet without a running keygate: tenants create and
                     keys create|list|revoke|rotate act on the configured Redis directly

Exit codes: 0 done, 1 keygate refused the request, 64 usage, 69 keygate (or Redis) unreachable,
77 admin token missing or refused, 78 invalid configuration. See docs/cli.md.
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
  key: { type: 'string' },
  ttl: { type: 'string' },
  assistant: { type: 'string' },
  'max-sessions': { type: 'string' },
  'max-uses': { type: 'string' },
  url: { type: 'string' },
  json: { type: 'boolean' },
  output: { type: 'string' },
  store: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true });
  } catch (err) {
    throw new CliError(EXIT.usage, (err as Error).message);
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv);
  const [command = 'serve', sub] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (values.output !== undefined && values.output !== 'json' && values.output !== 'table') {
    throw new CliError(EXIT.usage, `--output must be table or json, got ${values.output}`);
  }
  const json = values.json === true || values.output === 'json';
  if (command === 'serve') return (await import('./main.ts')).serve();
  if (command === 'config' && sub === 'check') {
    const [{ checkedConfigOrExit }, { redactConfig }] = await Promise.all([import('./config-check.ts'), import('../config/load.ts')]);
    process.stdout.write(`${JSON.stringify(redactConfig(checkedConfigOrExit()), null, 2)}\n`);
    return;
  }
  if (command === 'healthcheck') {
    const { healthcheck } = await import('./healthcheck.ts');
    process.exitCode = await healthcheck((line) => process.stderr.write(`${line}\n`));
    return;
  }
  const name = command === 'overview' ? command : `${command} ${sub ?? ''}`;
  const { adminCommands, runAdminCommand } = await import('./cli-admin.ts');
  const out = values.store ? await (await import('./manage.ts')).runStoreCommand(name, values) : await runAdminCommand(name, values);
  if (!out) {
    const known = values.store ? (await import('./manage.ts')).storeCommands : adminCommands;
    throw new CliError(EXIT.usage, `unknown command "${name.trim()}"${values.store ? ' with --store' : ''}; commands: ${known.join(', ')} (keygate --help)`);
  }
  print(out, json);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof CliError) {
    process.stderr.write(`keygate: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  if (err instanceof ApiError) {
    process.stderr.write(`keygate: ${err.code}: ${err.message}\n`);
    process.exit(EXIT.refused);
  }
  process.stderr.write(`keygate: ${(err as Error).message}\n`);
  process.exit(1);
});
