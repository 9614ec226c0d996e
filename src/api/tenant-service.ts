import type { Config, Plan } from '../config/schema.ts';
import { ApiError } from '../http/errors.ts';
import { guarded } from './http.ts';
import { newTenantId } from '../keys/ids.ts';
import type { Tenant } from '../keys/types.ts';
import type { KeyStore, Page, PageRequest } from '../store/types.ts';
import type { CreateKeyBody, CreateTenantBody, UpdateTenantBody } from './schemas.ts';
import { actorName, planOf, unknownPlan, type Actor, type CreatedApiKey } from './key-rules.ts';

/** Tenants a search reads at most (`GET /admin/v1/tenant-search`): its cost stays bounded with any fleet. */
const SEARCH_SCAN = 20_000;

/**
 * The tenant lifecycle: creation (with its first key), reads, changes, search and deletion. The keys are the
 * subclass's (api/key-service.ts): a tenant is created with a first key made by the same rules as any other.
 */
export abstract class TenantService {
  protected readonly keyStore: KeyStore;
  protected readonly config: Config;

  constructor(deps: { store: KeyStore; config: Config }) {
    this.keyStore = deps.store;
    this.config = deps.config;
  }

  get store(): KeyStore {
    return this.keyStore;
  }

  abstract createKey(tenantId: string, body: CreateKeyBody, actor: Actor): Promise<CreatedApiKey>;

  planOf(tenant: Tenant): Plan & { name: string } {
    return planOf(this.config, tenant);
  }

  async createTenant(body: CreateTenantBody, actor: Actor = { kind: 'admin' }): Promise<{ tenant: Tenant; apiKey: CreatedApiKey }> {
    const planName = body.plan ?? this.config.defaultPlan;
    const plan = this.config.plans[planName];
    if (!plan) throw unknownPlan(this.config);
    const now = new Date().toISOString();
    const tenant: Tenant = {
      id: newTenantId(),
      name: body.name,
      plan: planName,
      maxKeys: body.maxKeys ?? plan.maxKeys,
      status: 'active',
      createdAt: now,
      updatedAt: now,
    };
    await guarded(this.keyStore.createTenant(tenant, { action: 'tenant.created', actor: actorName(actor), keyId: null, details: { name: tenant.name, plan: planName } }));
    try {
      // The tenant's first key holds `*` and the widest authority the plan allows — its maxima included — so that it
      // can delegate any of it (api/authority.ts).
      const widest = {
        rateLimit: { requestsPerMinute: plan.requestsPerMinute.max, requestsPerDay: plan.requestsPerDay.max },
        quota: { requestsPerMonth: plan.requestsPerMonth.max, sessionMinutesPerMonth: plan.sessionMinutesPerMonth.max },
        maxConcurrentConnections: plan.maxConcurrentConnections.max,
      };
      const apiKey = await this.createKey(tenant.id, { name: 'default', keyType: 'private', permissions: ['*'], transientAssistant: true, ...widest }, actor);
      return { tenant, apiKey };
    } catch (err) {
      // Nothing half-written: a tenant whose first key could not be stored is removed again.
      await this.keyStore.deleteTenant(tenant.id, actorName(actor)).catch(() => {});
      throw err;
    }
  }

  async getTenant(id: string): Promise<Tenant> {
    const tenant = await guarded(this.keyStore.getTenant(id));
    if (!tenant) throw new ApiError('not_found', `No tenant ${id}.`);
    return tenant;
  }

  listTenants(page: PageRequest): Promise<Page<Tenant>> {
    return guarded(this.keyStore.listTenants(page));
  }

  async updateTenant(id: string, body: UpdateTenantBody, actor: Actor = { kind: 'admin' }): Promise<Tenant> {
    if (body.plan !== undefined && !this.config.plans[body.plan]) {
      throw unknownPlan(this.config);
    }
    const fields = Object.keys(body);
    const updated = await guarded(
      this.keyStore.updateTenant(id, (t) => ({ ...t, ...body, updatedAt: new Date().toISOString() }), {
        action: 'tenant.updated',
        actor: actorName(actor),
        keyId: null,
        details: { fields, ...(body.status ? { status: body.status } : {}) },
      }),
    );
    if (!updated) throw new ApiError('not_found', `No tenant ${id}.`);
    return updated;
  }

  /**
   * The tenant is stopped first: suspended (every key fails `tenant_suspended` on every replica, the change being
   * published like any other), and `stop` closes what else could still be added (its webhook endpoints). Then the
   * keys are revoked and the tenant removed. A tenant already half-deleted (no record) is finished.
   */
  async deleteTenant(id: string, actor: Actor = { kind: 'admin' }, stop: () => Promise<void> = async () => {}): Promise<void> {
    const audit = { action: 'tenant.updated', actor: actorName(actor), keyId: null, details: { fields: ['status'], status: 'suspended', reason: 'deleting' } };
    await guarded(this.keyStore.updateTenant(id, (t) => (t.status === 'suspended' ? null : { ...t, status: 'suspended', updatedAt: new Date().toISOString() }), audit));
    await stop();
    if (!(await guarded(this.keyStore.deleteTenant(id, actorName(actor))))) throw new ApiError('not_found', `No tenant ${id}.`);
  }

  /**
   * Tenants whose name or id contains `q` (case-insensitive; every tenant when empty), with their key counts: at
   * most `limit`, found among the first SEARCH_SCAN tenants (`truncated` says the scan stopped there).
   */
  async searchTenants(q: string, limit: number): Promise<{ data: Array<Tenant & { keyCount: number }>; scanned: number; truncated: boolean }> {
    const needle = q.toLowerCase();
    const found: Tenant[] = [];
    let cursor: string | null = null;
    let scanned = 0;
    do {
      const page: Page<Tenant> = await guarded(this.keyStore.listTenants({ limit: 100, cursor }));
      scanned += page.data.length;
      for (const t of page.data) if (found.length < limit && (t.name.toLowerCase().includes(needle) || t.id.toLowerCase().includes(needle))) found.push(t);
      cursor = page.nextCursor;
    } while (cursor && found.length < limit && scanned < SEARCH_SCAN);
    const counts = await guarded(Promise.all(found.map((t) => this.keyStore.countKeys(t.id))));
    return { data: found.map((t, i) => ({ ...t, keyCount: counts[i]! })), scanned, truncated: cursor !== null && found.length < limit };
  }

  async tenantSummary(tenantId: string) {
    const tenant = await this.getTenant(tenantId);
    return { tenant, plan: this.planOf(tenant), keyCount: await guarded(this.keyStore.countKeys(tenantId)) };
  }
}
