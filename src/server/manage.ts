import { KeyService } from '../api/key-service.ts';
import { createKeyBody } from '../api/schemas.ts';
import { validate } from '../api/http.ts';
import { ApiError } from '../http/errors.ts';
import { createKeyFormat } from '../keys/format.ts';
import { createKeyHasher } from '../keys/hashing.ts';
import { redactConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { openStore } from '../store/index.ts';
import { WebhookOutboxes } from '../webhooks/outbox.ts';
import { StoreError } from '../store/errors.ts';
import { CliError, EXIT, type Output } from './cli-output.ts';
import { renderCreatedKey, renderCreatedTenant, renderKeys, renderRevoked } from './cli-render.ts';
import type { Flags } from './cli-admin.ts';
import { configOrExit } from './config-check.ts';

// `--store`: management commands on the configured Redis directly, with no keygate running — for
// bootstrapping a Redis-backed fleet (an init job that creates the first tenant before any replica is up).
// Everything else goes through a running keygate's admin API. With the embedded store there is nothing to
// bootstrap: the store lives inside the one keygate process, so a command here would act on an empty store of
// its own and print a key no server knows; that is refused.

export const storeCommands = ['tenants create', 'keys create', 'keys list', 'keys revoke', 'keys rotate'];

function need(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new CliError(EXIT.usage, `--${name} is required`);
  return v;
}

/** The store's address for messages, passwords cut out. */
function redisAddress(config: Config): string {
  const r = redactConfig(config).redis;
  if (r.url) return r.url;
  if (r.sentinels) return `sentinels ${r.sentinels.map((s) => `${s.host}:${s.port}`).join(',')} (${r.sentinelName})`;
  return `cluster ${(r.clusterNodes ?? []).join(',')}`;
}

const causeMessage = (err: Error): string => (err.cause instanceof Error ? err.cause.message : 'unknown cause');

/** Runs `name` on the configured store, with the same rules as the admin API; null when there is no such command. */
export async function runStoreCommand(name: string, flags: Flags): Promise<Output | null> {
  if (!storeCommands.includes(name)) return null;
  const config = configOrExit();
  if (config.redis.url === null && config.redis.sentinels === null && config.redis.clusterNodes === null) {
    throw new CliError(
      EXIT.usage,
      '--store needs a Redis store (REDIS_URL, redis.sentinels or redis.clusterNodes); without one, keygate keeps keys inside its own process: drop --store to use the running keygate\'s admin API',
    );
  }
  const where = redisAddress(config);
  // The CLI's mutations send their events too (read by the replicas' delivery workers).
  const { store, ready } = await openStore(config, config.webhooks.enabled ? new WebhookOutboxes(config.redis.keyPrefix, config.webhooks.outboxMaxEntries, config.webhooks) : null);
  if (!ready) {
    await store.close();
    throw new CliError(EXIT.unavailable, `cannot reach Redis at ${where} within 5 s`);
  }
  const service = new KeyService({
    store,
    config,
    format: createKeyFormat({ private: config.keys.privatePrefix, public: config.keys.publicPrefix }),
    hash: createKeyHasher(config.keys.pepper),
  });
  const admin = { kind: 'admin' } as const;
  try {
    if (name === 'tenants create') {
      return renderCreatedTenant(await service.createTenant({ name: need(flags, 'name'), ...(typeof flags.plan === 'string' ? { plan: flags.plan } : {}) }));
    }
    const tenant = need(flags, 'tenant');
    if (name === 'keys create') {
      const body = validate(createKeyBody, {
        ...(typeof flags.name === 'string' ? { name: flags.name } : {}),
        ...(typeof flags.type === 'string' ? { keyType: flags.type } : {}),
        ...(typeof flags.permissions === 'string' ? { permissions: flags.permissions.split(',').map((s) => s.trim()) } : {}),
        ...(typeof flags['expires-in-days'] === 'string' ? { expiresInDays: Number(flags['expires-in-days']) } : {}),
      });
      return renderCreatedKey(await service.createKey(tenant, body, admin));
    }
    if (name === 'keys list') {
      const keys = [];
      let cursor: string | null = null;
      do {
        const page = await service.listKeys(tenant, { limit: 100, cursor }, admin);
        keys.push(...page.data);
        cursor = page.nextCursor;
      } while (cursor);
      return renderKeys(keys);
    }
    const id = need(flags, 'id');
    if (name === 'keys revoke') {
      await service.revokeKey(tenant, id, admin);
      return renderRevoked(tenant, id);
    }
    return renderCreatedKey(await service.rotateKey(tenant, id, Number(flags['grace-seconds'] ?? 0), admin));
  } catch (err) {
    if (err instanceof ApiError) throw new CliError(EXIT.refused, `${err.code}: ${err.message}`, err.code);
    if (err instanceof StoreError) throw new CliError(EXIT.unavailable, `Redis at ${where}: ${err.message}: ${causeMessage(err)}`);
    throw err;
  } finally {
    await store.close();
  }
}
