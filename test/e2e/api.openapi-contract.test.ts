import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import createClient, { type Middleware } from 'openapi-fetch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminClient, createSelfServiceClient, type AdminPaths, type SelfServicePaths } from '../../src/client/index.ts';
import { checksum } from '../../src/keys/format.ts';
import { ADMIN_TOKEN, type KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// The OpenAPI document as a contract: every operation called through `keygate/client` (openapi-fetch
// on the types openapi-typescript generates), and every response — successes and refusals alike — checked
// against the document keygate serves: its status must be listed for that operation, its body must match the
// listed schema (ajv, JSON Schema 2020-12), and the headers the document calls required must be there.

const servers = useServers();

type Doc = { paths: Record<string, Record<string, Operation>>; components: { responses: Record<string, ResponseSpec> } };
type Operation = { operationId: string; responses: Record<string, ResponseSpec | { $ref: string }> };
type ResponseSpec = { description: string; headers?: Record<string, { $ref?: string; required?: boolean }>; content?: Record<string, { schema: object }> };

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** Checks responses against the served document and records which operation answered with which status. */
class Contract {
  readonly seen = new Map<string, Set<number>>();
  readonly problems: string[] = [];
  readonly #doc: Doc;
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true });
  readonly #validators = new Map<string, ValidateFunction>();

  constructor(doc: Doc) {
    this.#doc = doc;
    this.#ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)));
    this.#ajv.addFormat('date', /^\d{4}-\d\d-\d\d$/);
    this.#ajv.addSchema(doc as object, 'openapi');
  }

  get operations(): string[] {
    return Object.values(this.#doc.paths).flatMap((item) => Object.values(item).filter((op): op is Operation => typeof op === 'object' && op !== null && 'operationId' in op).map((op) => op.operationId));
  }

  async check(method: string, schemaPath: string, response: Response): Promise<void> {
    const op = this.#doc.paths[schemaPath]?.[method.toLowerCase()];
    if (!op) return void this.problems.push(`${method} ${schemaPath}: no such operation in the document`);
    const where = `${op.operationId} → ${response.status}`;
    (this.seen.get(op.operationId) ?? this.seen.set(op.operationId, new Set()).get(op.operationId)!).add(response.status);
    let spec = op.responses[String(response.status)];
    if (!spec) return void this.problems.push(`${where}: status not listed (${await response.text()})`);
    let at = pointer('paths', schemaPath, method.toLowerCase(), 'responses', String(response.status));
    if ('$ref' in spec) {
      const name = spec.$ref.split('/').at(-1)!;
      at = pointer('components', 'responses', name);
      spec = this.#doc.components.responses[name]!;
    }
    for (const [name, header] of Object.entries(spec.headers ?? {})) {
      const required = header.required ?? (header.$ref ? true : false);
      if (required && !response.headers.get(name)) this.problems.push(`${where}: header ${name} missing`);
    }
    const text = await response.text();
    if (!spec.content) {
      if (text !== '') this.problems.push(`${where}: a body where the document lists none`);
      return;
    }
    if (!response.headers.get('content-type')?.startsWith('application/json')) return void this.problems.push(`${where}: content-type ${response.headers.get('content-type')}`);
    const key = `${at}/content/application~1json/schema`;
    let validate = this.#validators.get(key);
    if (!validate) this.#validators.set(key, (validate = this.#ajv.compile({ $ref: `openapi#/${key}` })));
    if (!validate(JSON.parse(text))) this.problems.push(`${where}: ${this.#ajv.errorsText(validate.errors)} in ${text.slice(0, 300)}`);
  }

  /** An openapi-fetch middleware that checks every response a client receives. */
  middleware(): Middleware {
    return {
      onResponse: async ({ request, response, schemaPath }) => {
        await this.check(request.method, schemaPath, response.clone());
      },
    };
  }
}

let kg: KeygateProcess;
let contract: Contract;
let admin: ReturnType<typeof createAdminClient>;
const selfService = (apiKey: string) => {
  const client = createSelfServiceClient({ baseUrl: kg.url, apiKey });
  client.use(contract.middleware());
  return client;
};

beforeAll(async () => {
  kg = await servers.keygate({ env: { KEYGATE_TOKEN_SIGNING_KEYS: 'contract:a-token-signing-secret-of-32-chars-or-more' }, config: { webhooks: { enabled: true, allowPrivateTargets: true, pollIntervalMs: 100, retryBaseMs: 50, retryMaxMs: 100, retryForHours: 0.0002 } } });
  const served = await fetch(`${kg.url}/keygate/v1/openapi.json`);
  contract = new Contract((await served.json()) as Doc);
  admin = createAdminClient({ baseUrl: kg.opsUrl, adminToken: ADMIN_TOKEN });
  admin.use(contract.middleware());
});
afterAll(() => {
  // The tally, for the report: operations exercised and the statuses each answered.
  const lines = [...contract.seen].map(([op, statuses]) => `${op}: ${[...statuses].sort().join(' ')}`);
  process.stdout.write(`OpenAPI contract: ${contract.seen.size} operations exercised\n  ${lines.join('\n  ')}\n`);
});

describe('the OpenAPI document as a contract', () => {
  it('holds for every operation, successes and refusals, called through keygate/client', async () => {
    // ---- admin: tenants --------------------------------------------------------------------------------------
    const made = await admin.POST('/admin/v1/tenants', { body: { name: 'contract', plan: 'pro', maxKeys: 4 } });
    expect(made.response.status).toBe(201);
    const tenantId = made.data!.tenant.id;
    const root = made.data!.apiKey;
    expect((await admin.GET('/admin/v1/tenants', { params: { query: { limit: 5 } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}', { params: { path: { tenantId } } })).response.status).toBe(200);
    expect((await admin.PATCH('/admin/v1/tenants/{tenantId}', { params: { path: { tenantId } }, body: { name: 'contract co' } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/overview')).response.status).toBe(200);
    // The console's reads (admin API operations like any other).
    expect((await admin.GET('/admin/v1/whoami')).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/fleet')).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/audit-log', { params: { query: { limit: 10 } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/tenant-search', { params: { query: { q: 'contract' } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/tenant-search', { params: { query: { limit: 0 } } })).response.status).toBe(400);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/summary', { params: { path: { tenantId } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/summary', { params: { path: { tenantId: 'ten_00000000000000000000000000' } } })).response.status).toBe(404);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/usage', { params: { path: { tenantId }, query: { granularity: 'hour' } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/usage', { params: { path: { tenantId }, query: { granularity: 'hour', from: '2020-01-01' } } })).response.status).toBe(400);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/usage', { params: { path: { tenantId: 'ten_00000000000000000000000000' } } })).response.status).toBe(404);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/keys-usage', { params: { path: { tenantId }, query: { period: '2026-11', keyIds: root.id } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/keys-usage', { params: { path: { tenantId }, query: { period: '2026-11', keyIds: 'nope' } } })).response.status).toBe(400);

    // ---- self-service, with the tenant's first key (`*`) -----------------------------------------------------
    const me = selfService(root.key);
    expect((await me.GET('/keygate/v1/openapi.json')).response.status).toBe(200);
    expect((await me.GET('/keygate/v1/tenants/me')).response.status).toBe(200);
    const narrow = await me.POST('/keygate/v1/api-keys', { body: { name: 'narrow', permissions: ['calls:read'], rateLimit: { requestsPerMinute: 100 } } });
    expect(narrow.response.status).toBe(201);
    const narrowId = narrow.data!.id;
    const defaulted = await me.POST('/keygate/v1/api-keys', {}); // every field defaulted
    expect(defaulted.response.status).toBe(201);
    expect((await me.GET('/keygate/v1/api-keys', {})).response.status).toBe(200);
    expect((await me.GET('/keygate/v1/api-keys/{id}', { params: { path: { id: narrowId } } })).response.status).toBe(200);
    expect((await me.GET('/keygate/v1/api-keys/{id}', { params: { path: { id: 'current' } } })).response.status).toBe(200);
    expect((await me.PATCH('/keygate/v1/api-keys/{id}', { params: { path: { id: narrowId } }, body: { metadata: { team: 'dialer' } } })).response.status).toBe(200);
    expect((await me.POST('/keygate/v1/api-keys/{id}/rotate', { params: { path: { id: narrowId } } })).response.status).toBe(201);
    expect((await me.GET('/keygate/v1/usage', { params: { query: { granularity: 'month' } } })).response.status).toBe(200);
    expect((await me.GET('/keygate/v1/audit-log', { params: { query: { limit: 10 } } })).response.status).toBe(200);

    // Refusals: validation, addressing, conflicts, body size and format.
    expect((await me.POST('/keygate/v1/api-keys', { body: { name: '' } })).response.status).toBe(400);
    expect((await me.GET('/keygate/v1/api-keys', { params: { query: { limit: 0 } } })).response.status).toBe(400);
    expect((await me.GET('/keygate/v1/usage', { params: { query: { granularity: 'year' as 'day' } } })).response.status).toBe(400);
    expect((await me.GET('/keygate/v1/audit-log', { params: { query: { cursor: '' } } })).response.status).toBe(400);
    const missing = { params: { path: { id: 'key_00000000000000000000000000' } } };
    expect((await me.GET('/keygate/v1/api-keys/{id}', missing)).response.status).toBe(404);
    expect((await me.PATCH('/keygate/v1/api-keys/{id}', { ...missing, body: {} })).response.status).toBe(404);
    expect((await me.DELETE('/keygate/v1/api-keys/{id}', missing)).response.status).toBe(404);
    expect((await me.POST('/keygate/v1/api-keys/{id}/rotate', missing)).response.status).toBe(404);
    expect((await me.PATCH('/keygate/v1/api-keys/{id}', { params: { path: { id: narrowId } }, body: { isActive: 'yes' as unknown as boolean } })).response.status).toBe(400);
    expect((await me.POST('/keygate/v1/api-keys/{id}/rotate', { params: { path: { id: narrowId } }, body: { gracePeriodSeconds: -1 } })).response.status).toBe(400);
    expect((await me.DELETE('/keygate/v1/api-keys/{id}', { params: { path: { id: 'current' } } })).response.status).toBe(409);
    expect((await me.POST('/keygate/v1/api-keys', { body: { metadata: { blob: 'x'.repeat(20_000) } } })).response.status).toBe(413);
    expect((await me.POST('/keygate/v1/api-keys', { body: {}, bodySerializer: () => '{"name": ' })).response.status).toBe(400);
    expect((await me.POST('/keygate/v1/api-keys', { body: { name: 'fourth' } })).response.status).toBe(201);
    expect((await me.POST('/keygate/v1/api-keys', { body: { name: 'fifth' } })).response.status).toBe(409); // maxKeys 4

    // A key narrower than the operation needs: 403 insufficient_permissions everywhere it is checked.
    const rotated = await admin.POST('/admin/v1/tenants/{tenantId}/api-keys/{id}/rotate', { params: { path: { tenantId, id: narrowId } } });
    expect(rotated.response.status).toBe(201);
    const weak = selfService(rotated.data!.key);
    expect((await weak.GET('/keygate/v1/tenants/me')).response.status).toBe(200);
    expect((await weak.POST('/keygate/v1/api-keys', { body: { name: 'x' } })).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/api-keys', {})).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/api-keys/{id}', { params: { path: { id: root.id } } })).response.status).toBe(403);
    expect((await weak.PATCH('/keygate/v1/api-keys/{id}', { params: { path: { id: root.id } }, body: { name: 'mine' } })).response.status).toBe(403);
    expect((await weak.DELETE('/keygate/v1/api-keys/{id}', { params: { path: { id: root.id } } })).response.status).toBe(403);
    expect((await weak.POST('/keygate/v1/api-keys/{id}/rotate', { params: { path: { id: root.id } } })).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/usage', {})).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/audit-log', {})).response.status).toBe(403);

    // Session tokens: minted by a key, read by the token itself; refused wider than the key, or from a weak key.
    const minted = await me.POST('/keygate/v1/session-tokens', { body: { ttlSeconds: 60, permissions: ['calls:read'], metadata: { user: 'u1' } } });
    expect(minted.response.status).toBe(201);
    expect((await selfService(minted.data!.token).GET('/keygate/v1/session-tokens/current')).response.status).toBe(200);
    expect((await me.GET('/keygate/v1/session-tokens/current')).response.status).toBe(404);
    expect((await me.POST('/keygate/v1/session-tokens', { body: { ttlSeconds: 1 } })).response.status).toBe(400);
    expect((await weak.POST('/keygate/v1/session-tokens', { body: {} })).response.status).toBe(403);
    const adminMinted = await admin.POST('/admin/v1/tenants/{tenantId}/session-tokens', { params: { path: { tenantId } }, body: { keyId: narrowId, permissions: ['calls:read'] } });
    expect(adminMinted.response.status).toBe(201);
    expect((await admin.POST('/admin/v1/tenants/{tenantId}/session-tokens', { params: { path: { tenantId } }, body: { keyId: 'key_00000000000000000000000000' } })).response.status).toBe(404);
    expect((await admin.POST('/admin/v1/tenants/{tenantId}/session-tokens', { params: { path: { tenantId } }, body: { keyId: narrowId, permissions: ['calls:write'] } })).response.status).toBe(403);

    // The tenant's own webhook endpoints: `*` holds webhooks:*, the narrow key neither read nor write.
    const myHook = await me.POST('/keygate/v1/webhooks', { body: { url: 'http://127.0.0.1:9/mine', events: ['key.updated'] } });
    expect(myHook.response.status).toBe(201);
    const myEp = { params: { path: { endpointId: myHook.data!.id } } };
    expect((await me.PATCH('/keygate/v1/api-keys/{id}', { params: { path: { id: narrowId } }, body: { name: 'hooked' } })).response.status).toBe(200);
    let myDead: string | undefined;
    for (let i = 0; i < 100 && !myDead; i++) {
      await new Promise((r) => setTimeout(r, 100));
      myDead = (await me.GET('/keygate/v1/webhooks/dead-letters')).data?.data[0]?.key;
    }
    expect((await me.POST('/keygate/v1/webhooks/dead-letters/{key}/redeliver', { params: { path: { key: myDead! } } })).response.status).toBe(204);
    expect((await me.GET('/keygate/v1/webhooks')).response.status).toBe(200);
    expect((await me.GET('/keygate/v1/webhooks/{endpointId}', myEp)).response.status).toBe(200);
    expect((await me.POST('/keygate/v1/webhooks/{endpointId}/enable', myEp)).response.status).toBe(200);
    expect((await weak.POST('/keygate/v1/webhooks/{endpointId}/enable', myEp)).response.status).toBe(403);
    expect((await me.POST('/keygate/v1/webhooks/{endpointId}/rotate-secret', { ...myEp, body: {} })).response.status).toBe(200);
    expect((await me.GET('/keygate/v1/webhooks/{endpointId}/deliveries', myEp)).response.status).toBe(200);
    expect((await weak.POST('/keygate/v1/webhooks', { body: { url: 'https://example.com/' } })).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/webhooks')).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/webhooks/dead-letters')).response.status).toBe(403);
    expect((await weak.POST('/keygate/v1/webhooks/dead-letters/{key}/redeliver', { params: { path: { key: myDead! } } })).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/webhooks/{endpointId}', myEp)).response.status).toBe(403);
    expect((await weak.POST('/keygate/v1/webhooks/{endpointId}/rotate-secret', { ...myEp, body: {} })).response.status).toBe(403);
    expect((await weak.GET('/keygate/v1/webhooks/{endpointId}/deliveries', myEp)).response.status).toBe(403);
    expect((await weak.DELETE('/keygate/v1/webhooks/{endpointId}', myEp)).response.status).toBe(403);
    expect((await me.DELETE('/keygate/v1/webhooks/{endpointId}', myEp)).response.status).toBe(204);
    expect((await me.GET('/keygate/v1/webhooks/{endpointId}', myEp)).response.status).toBe(404);

    // No key and a wrong key: 401 on every authenticated operation.
    const anonymous = createClient<SelfServicePaths>({ baseUrl: kg.url });
    anonymous.use(contract.middleware());
    const wrong = selfService('kg_sk_000000000000000000000000000000');
    for (const client of [anonymous, wrong]) {
      expect((await client.GET('/keygate/v1/tenants/me')).response.status).toBe(401);
      expect((await client.POST('/keygate/v1/api-keys', {})).response.status).toBe(401);
      expect((await client.GET('/keygate/v1/api-keys', {})).response.status).toBe(401);
      expect((await client.GET('/keygate/v1/api-keys/{id}', { params: { path: { id: narrowId } } })).response.status).toBe(401);
      expect((await client.PATCH('/keygate/v1/api-keys/{id}', { params: { path: { id: narrowId } }, body: {} })).response.status).toBe(401);
      expect((await client.DELETE('/keygate/v1/api-keys/{id}', { params: { path: { id: narrowId } } })).response.status).toBe(401);
      expect((await client.POST('/keygate/v1/api-keys/{id}/rotate', { params: { path: { id: narrowId } } })).response.status).toBe(401);
      expect((await client.GET('/keygate/v1/usage', {})).response.status).toBe(401);
      expect((await client.GET('/keygate/v1/audit-log', {})).response.status).toBe(401);
    }

    // ---- admin: key operations and refusals -------------------------------------------------------------------
    const tenant = { tenantId };
    const adminKey = await admin.POST('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant }, body: { name: 'too many' } });
    expect(adminKey.response.status).toBe(409); // maxKeys 4 holds for the admin too
    expect((await me.DELETE('/keygate/v1/api-keys/{id}', { params: { path: { id: defaulted.data!.id } } })).response.status).toBe(204);
    expect((await admin.PATCH('/admin/v1/tenants/{tenantId}', { params: { path: tenant }, body: { maxKeys: 10 } })).response.status).toBe(200);
    const byAdmin = await admin.POST('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant }, body: { name: 'by admin', keyType: 'public', permissions: ['calls:read'], allowedOrigins: ['https://app.example.com'] } });
    expect(byAdmin.response.status).toBe(201);
    const keyPath = { params: { path: { tenantId, id: byAdmin.data!.id } } };
    // The gate's rate limits hold on /keygate/v1 too: 429 with Retry-After.
    const limited = await admin.POST('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant }, body: { name: 'limited', rateLimit: { requestsPerMinute: 1 } } });
    const slow = selfService(limited.data!.key);
    expect((await slow.GET('/keygate/v1/tenants/me')).response.status).toBe(200);
    expect((await slow.GET('/keygate/v1/tenants/me')).response.status).toBe(429);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant, query: { limit: 2 } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/api-keys/{id}', keyPath)).response.status).toBe(200);
    expect((await admin.PATCH('/admin/v1/tenants/{tenantId}/api-keys/{id}', { ...keyPath, body: { isActive: false } })).response.status).toBe(200);
    expect((await admin.POST('/admin/v1/tenants/{tenantId}/api-keys/{id}/rotate', { ...keyPath, body: { gracePeriodSeconds: 60 } })).response.status).toBe(201);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/audit-log', { params: { path: tenant } })).response.status).toBe(200);
    expect((await admin.DELETE('/admin/v1/tenants/{tenantId}/api-keys/{id}', keyPath)).response.status).toBe(204);
    const doomed = await admin.POST('/admin/v1/tenants', { body: { name: 'doomed' } });
    expect((await admin.DELETE('/admin/v1/tenants/{tenantId}', { params: { path: { tenantId: doomed.data!.tenant.id } } })).response.status).toBe(204);

    const nobody = { params: { path: { tenantId: 'ten_00000000000000000000000000' } } };
    const nokey = { params: { path: { tenantId, id: 'key_00000000000000000000000000' } } };
    expect((await admin.POST('/admin/v1/tenants', { body: { name: '' } })).response.status).toBe(400);
    expect((await admin.POST('/admin/v1/tenants', { body: { name: 'big', surprise: 'x'.repeat(20_000) } as { name: string } })).response.status).toBe(413);
    expect((await admin.GET('/admin/v1/tenants', { params: { query: { limit: 1000 } } })).response.status).toBe(400);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}', nobody)).response.status).toBe(404);
    expect((await admin.PATCH('/admin/v1/tenants/{tenantId}', { ...nobody, body: { name: 'x' } })).response.status).toBe(404);
    expect((await admin.PATCH('/admin/v1/tenants/{tenantId}', { params: { path: tenant }, body: { status: 'paused' as 'active' } })).response.status).toBe(400);
    expect((await admin.DELETE('/admin/v1/tenants/{tenantId}', nobody)).response.status).toBe(404);
    // (The audit log of a well-formed but unknown tenant is an empty page; a malformed id is a 404.)
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/audit-log', { params: { path: { tenantId: 'ten_nope' } } })).response.status).toBe(404);
    expect((await admin.POST('/admin/v1/tenants/{tenantId}/api-keys', { ...nobody, body: {} })).response.status).toBe(404);
    expect((await admin.POST('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant }, body: { keyType: 'public', permissions: ['api-keys:read'] } })).response.status).toBe(400);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/api-keys', nobody)).response.status).toBe(404);
    expect((await admin.GET('/admin/v1/tenants/{tenantId}/api-keys/{id}', nokey)).response.status).toBe(404);
    expect((await admin.PATCH('/admin/v1/tenants/{tenantId}/api-keys/{id}', { ...nokey, body: {} })).response.status).toBe(404);
    expect((await admin.DELETE('/admin/v1/tenants/{tenantId}/api-keys/{id}', nokey)).response.status).toBe(404);
    expect((await admin.POST('/admin/v1/tenants/{tenantId}/api-keys/{id}/rotate', nokey)).response.status).toBe(404);

    // Webhook endpoints.
    // Port 9 refuses, and the retry window is under a second: the event of the key created next is dead-lettered.
    const hook = await admin.POST('/admin/v1/webhooks', { body: { url: 'http://127.0.0.1:9/hook', events: ['key.created'] } });
    expect(hook.response.status).toBe(201);
    expect((await admin.POST('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant }, body: { name: 'hooked' } })).response.status).toBe(201);
    let dead: string | undefined;
    for (let i = 0; i < 100 && !dead; i++) {
      await new Promise((r) => setTimeout(r, 100));
      dead = (await admin.GET('/admin/v1/webhooks/dead-letters')).data?.data[0]?.key;
    }
    expect((await admin.POST('/admin/v1/webhooks/dead-letters/{key}/redeliver', { params: { path: { key: dead! } } })).response.status).toBe(204);
    const ep = { params: { path: { endpointId: hook.data!.id } } };
    const noEp = { params: { path: { endpointId: 'whe_00000000000000000000000000' } } };
    expect((await admin.GET('/admin/v1/webhooks')).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/webhooks/{endpointId}', ep)).response.status).toBe(200);
    expect((await admin.POST('/admin/v1/webhooks/{endpointId}/enable', ep)).response.status).toBe(200);
    expect((await admin.POST('/admin/v1/webhooks/{endpointId}/enable', noEp)).response.status).toBe(404);
    expect((await admin.POST('/admin/v1/webhooks/{endpointId}/rotate-secret', { ...ep, body: { gracePeriodSeconds: 60 } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/webhooks/{endpointId}/deliveries', { params: { ...ep.params, query: { limit: 10 } } })).response.status).toBe(200);
    expect((await admin.GET('/admin/v1/webhooks/dead-letters')).response.status).toBe(200);
    expect((await admin.POST('/admin/v1/webhooks/dead-letters/{key}/redeliver', { params: { path: { key: 'msg_x:whe_y' } } })).response.status).toBe(404);
    expect((await admin.DELETE('/admin/v1/webhooks/{endpointId}', ep)).response.status).toBe(204);
    expect((await admin.POST('/admin/v1/webhooks', { body: { url: 'ftp://example.com/' } })).response.status).toBe(400);
    expect((await admin.GET('/admin/v1/webhooks/{endpointId}', noEp)).response.status).toBe(404);
    expect((await admin.DELETE('/admin/v1/webhooks/{endpointId}', noEp)).response.status).toBe(404);
    expect((await admin.POST('/admin/v1/webhooks/{endpointId}/rotate-secret', { ...noEp, body: {} })).response.status).toBe(404);
    expect((await admin.POST('/admin/v1/webhooks/{endpointId}/rotate-secret', { ...noEp, body: { gracePeriodSeconds: -1 } })).response.status).toBe(400);
    expect((await admin.GET('/admin/v1/webhooks/{endpointId}/deliveries', { params: { ...noEp.params, query: { limit: 0 } } })).response.status).toBe(400);
    expect((await admin.GET('/admin/v1/webhooks/{endpointId}/deliveries', noEp)).response.status).toBe(404);

    for (const token of [null, 'not-the-admin-token-0123']) {
      const client = token ? createAdminClient({ baseUrl: kg.opsUrl, adminToken: token }) : createClient<AdminPaths>({ baseUrl: kg.opsUrl });
      client.use(contract.middleware());
      const some = { params: { path: { tenantId, id: narrowId } } };
      const statuses = [
        (await client.POST('/admin/v1/tenants', { body: { name: 'x' } })).response.status,
        (await client.GET('/admin/v1/tenants', {})).response.status,
        (await client.GET('/admin/v1/tenants/{tenantId}', { params: { path: tenant } })).response.status,
        (await client.PATCH('/admin/v1/tenants/{tenantId}', { params: { path: tenant }, body: {} })).response.status,
        (await client.DELETE('/admin/v1/tenants/{tenantId}', { params: { path: tenant } })).response.status,
        (await client.GET('/admin/v1/tenants/{tenantId}/audit-log', { params: { path: tenant } })).response.status,
        (await client.POST('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant }, body: {} })).response.status,
        (await client.GET('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: tenant } })).response.status,
        (await client.GET('/admin/v1/tenants/{tenantId}/api-keys/{id}', some)).response.status,
        (await client.PATCH('/admin/v1/tenants/{tenantId}/api-keys/{id}', { ...some, body: {} })).response.status,
        (await client.DELETE('/admin/v1/tenants/{tenantId}/api-keys/{id}', some)).response.status,
        (await client.POST('/admin/v1/tenants/{tenantId}/api-keys/{id}/rotate', some)).response.status,
        (await client.GET('/admin/v1/overview')).response.status,
        (await client.GET('/admin/v1/whoami')).response.status,
        (await client.GET('/admin/v1/fleet')).response.status,
        (await client.GET('/admin/v1/audit-log', {})).response.status,
        (await client.GET('/admin/v1/tenant-search', {})).response.status,
        (await client.GET('/admin/v1/tenants/{tenantId}/summary', { params: { path: tenant } })).response.status,
        (await client.GET('/admin/v1/tenants/{tenantId}/usage', { params: { path: tenant } })).response.status,
        (await client.GET('/admin/v1/tenants/{tenantId}/keys-usage', { params: { path: tenant, query: { period: '2026-11', keyIds: narrowId } } })).response.status,
        (await client.POST('/admin/v1/webhooks', { body: { url: 'https://example.com/' } })).response.status,
        (await client.GET('/admin/v1/webhooks')).response.status,
        (await client.GET('/admin/v1/webhooks/dead-letters')).response.status,
        (await client.POST('/admin/v1/webhooks/dead-letters/{key}/redeliver', { params: { path: { key: 'k' } } })).response.status,
        (await client.GET('/admin/v1/webhooks/{endpointId}', { params: { path: { endpointId: 'whe_x' } } })).response.status,
        (await client.DELETE('/admin/v1/webhooks/{endpointId}', { params: { path: { endpointId: 'whe_x' } } })).response.status,
        (await client.POST('/admin/v1/webhooks/{endpointId}/rotate-secret', { params: { path: { endpointId: 'whe_x' } }, body: {} })).response.status,
        (await client.GET('/admin/v1/webhooks/{endpointId}/deliveries', { params: { path: { endpointId: 'whe_x' } } })).response.status,
        (await client.POST('/admin/v1/webhooks/{endpointId}/enable', { params: { path: { endpointId: 'whe_x' } } })).response.status,
      ];
      expect(new Set(statuses)).toEqual(new Set([401]));
    }

    // ---- the store down: 503 store_unavailable with Retry-After ----------------------------------------------
    await servers.redis.stop();
    try {
      // A well-formed key keygate has not seen: only the store could tell, so 503, never 401.
      const body = `kg_sk_${'A'.repeat(24)}`;
      const unknown = selfService(body + checksum(body));
      expect((await unknown.GET('/keygate/v1/tenants/me')).response.status).toBe(503);
      expect((await me.GET('/keygate/v1/api-keys', {})).response.status).toBe(503);
      expect((await admin.GET('/admin/v1/tenants', {})).response.status).toBe(503);
      expect((await admin.POST('/admin/v1/tenants', { body: { name: 'later' } })).response.status).toBe(503);
    } finally {
      await servers.redis.start();
    }
    expect(contract.problems).toEqual([]);
    // Every operation of the document was called, each answered a success and at least one refusal.
    expect([...contract.seen.keys()].sort()).toEqual(contract.operations.sort());
    for (const [op, statuses] of contract.seen) {
      expect([...statuses].some((s) => s < 300), `${op}: a success`).toBe(true);
      if (op !== 'getOpenApiDocument') expect([...statuses].some((s) => s >= 400), `${op}: a refusal`).toBe(true);
    }
  }, 60_000);
});
