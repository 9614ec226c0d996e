import { KeyService, type CreatedApiKey } from '../api/key-service.ts';
import { createKeyBody } from '../api/schemas.ts';
import { validate } from '../api/http.ts';
import { ApiError } from '../http/errors.ts';
import { createKeyFormat } from '../keys/format.ts';
import { createKeyHasher } from '../keys/hashing.ts';
import { openStore } from '../store/index.ts';
import { WebhookOutboxes } from '../webhooks/outbox.ts';
import { configOrExit } from './main.ts';

// The CLI's management commands (`tenants create`, `keys ...`), loaded only when one of them runs.

function need(value: string | undefined, flag: string): string {
  if (!value) throw new ApiError('validation_error', `--${flag} is required`);
  return value;
}

function printCreated(k: CreatedApiKey): void {
  process.stdout.write(`${JSON.stringify(k, null, 2)}\n`);
  process.stderr.write(`\n${k.message}\n`);
}

/** Management commands run against the configured store, with the same rules as the APIs. */
export async function manage(command: string, sub: string | undefined, values: Record<string, string | boolean | undefined>): Promise<boolean> {
  const config = configOrExit();
  // The CLI's mutations send their events too (read by the replicas' delivery workers).
  const { store } = await openStore(config, config.webhooks.enabled ? new WebhookOutboxes(config.redis.keyPrefix, config.webhooks.outboxMaxEntries) : null);
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
      return false;
    }
  } finally {
    await store.close();
  }
  return true;
}
