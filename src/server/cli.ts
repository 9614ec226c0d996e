#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { KeyService, type CreatedApiKey } from '../api/key-service.ts';
import { createKeyBody } from '../api/schemas.ts';
import { validate } from '../api/http.ts';
import { redactConfig } from '../config/load.ts';
import { ApiError } from '../http/errors.ts';
import { createKeyFormat } from '../keys/format.ts';
import { createKeyHasher } from '../keys/hashing.ts';
import { openStore } from '../store/index.ts';
import { configOrExit, serve } from './main.ts';

const USAGE = `usage: keygate [command]

  serve                                   run the proxy (default)
  config check                            print the effective configuration, secrets redacted
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

function need(value: string | undefined, flag: string): string {
  if (!value) throw new ApiError('validation_error', `--${flag} is required`);
  return value;
}

function printCreated(k: CreatedApiKey): void {
  process.stdout.write(`${JSON.stringify(k, null, 2)}\n`);
  process.stderr.write(`\n${k.message}\n`);
}

/** Management commands run against the configured store, with the same rules as the APIs. */
async function manage(command: string, sub: string | undefined, values: Record<string, string | boolean | undefined>): Promise<void> {
  const config = configOrExit();
  const { store } = await openStore(config);
  if (store.kind === 'memory') process.stderr.write('keygate: no Redis configured; this command works on an empty in-memory store that vanishes on exit\n');
  const service = new KeyService({
    store,
    config,
    format: createKeyFormat({ private: config.keys.privatePrefix, public: config.keys.publicPrefix }),
    hash: createKeyHasher(config.keys.pepper),
  });
  const v = values as Record<string, string | undefined>;
  try {
    if (command === 'tenants' && sub === 'create') {
      const { tenant, apiKey } = await service.createTenant({ name: need(v.name, 'name'), plan: v.plan });
      process.stdout.write(`${JSON.stringify({ tenant }, null, 2)}\n`);
      printCreated(apiKey);
    } else if (command === 'keys' && sub === 'create') {
      const body = validate(createKeyBody, {
        ...(v.name ? { name: v.name } : {}),
        ...(v.type ? { keyType: v.type } : {}),
        ...(v.permissions ? { permissions: v.permissions.split(',').map((s) => s.trim()) } : {}),
        ...(v['expires-in-days'] ? { expiresInDays: Number(v['expires-in-days']) } : {}),
      });
      printCreated(await service.createKey(need(v.tenant, 'tenant'), body, { kind: 'admin' }));
    } else if (command === 'keys' && sub === 'list') {
      const tenant = need(v.tenant, 'tenant');
      let cursor: string | null = null;
      do {
        const page = await service.listKeys(tenant, { limit: 100, cursor }, { kind: 'admin' });
        for (const k of page.data) process.stdout.write(`${JSON.stringify(k)}\n`);
        cursor = page.nextCursor;
      } while (cursor);
    } else if (command === 'keys' && sub === 'revoke') {
      await service.revokeKey(need(v.tenant, 'tenant'), need(v.id, 'id'), { kind: 'admin' });
      process.stdout.write(`revoked ${v.id}\n`);
    } else if (command === 'keys' && sub === 'rotate') {
      printCreated(await service.rotateKey(need(v.tenant, 'tenant'), need(v.id, 'id'), Number(v['grace-seconds'] ?? 0), { kind: 'admin' }));
    } else {
      process.stderr.write(USAGE);
      process.exitCode = 64;
    }
  } finally {
    await store.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true });
  const [command = 'serve', sub] = positionals;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'serve') return serve();
  if (command === 'config' && sub === 'check') {
    process.stdout.write(`${JSON.stringify(redactConfig(configOrExit()), null, 2)}\n`);
    return;
  }
  return manage(command, sub, values);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ApiError) {
    process.stderr.write(`keygate: ${err.code}: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`keygate: ${(err as Error).message}\n`);
  process.exit(1);
});
