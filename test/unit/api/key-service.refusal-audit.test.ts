import { describe, expect, it } from 'vitest';
import { KeyService } from '../../../src/api/key-service.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { ApiError } from '../../../src/http/errors.ts';
import { createKeyFormat } from '../../../src/keys/format.ts';
import { createKeyHasher } from '../../../src/keys/hashing.ts';
import { toAuthKey } from '../../../src/keys/types.ts';
import { MemoryStore } from '../../../src/store/memory/memory-store.ts';
import type { AuditInput } from '../../../src/store/types.ts';

// A refusal under the authority rule (api/authority.ts) is audited best effort: when the audit write fails, the failure is
// logged and the caller still gets its 403 (never a 503 that would hide the refusal, never the operation).

/** The real memory store whose standalone audit write fails, as a store outage would make it. */
class AuditDown extends MemoryStore {
  override async appendRefusal(_tenantId: string, _audit: AuditInput, _group: string): Promise<boolean> {
    throw new Error('audit stream unavailable');
  }
}

describe('KeyService: a refused operation whose audit write fails', () => {
  it('is still refused with 403 insufficient_permissions, and the failure is logged', async () => {
    const config = configSchema.parse({});
    const warnings: Array<[unknown, string]> = [];
    const logger = { warn: (obj: unknown, msg: string) => void warnings.push([obj, msg]) } as never;
    const service = new KeyService({
      store: new AuditDown({ auditMaxEntries: 100 }),
      config,
      format: createKeyFormat({ private: config.keys.privatePrefix, public: config.keys.publicPrefix }),
      hash: createKeyHasher(null),
      logger,
    });
    const { tenant, apiKey: root } = await service.createTenant({ name: 't' });
    const narrow = await service.createKey(tenant.id, { keyType: 'private', permissions: ['api-keys:write'] }, { kind: 'admin' });
    const actor = { kind: 'key' as const, key: toAuthKey(narrow) };

    const refused = await service.rotateKey(tenant.id, root.id, 0, actor).then(() => null, (err: unknown) => err);
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe('insufficient_permissions');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![0]).toMatchObject({ tenantId: tenant.id, keyId: root.id, operation: 'rotate' });
    // Not rotated: the stored key still has its one original hash.
    expect((await service.store.getKey(tenant.id, root.id))!.hashes).toHaveLength(1);
  });
});
