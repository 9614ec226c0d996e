import { z } from 'zod';
import * as s from './schemas.ts';

// The OpenAPI 3.1 document of both management APIs, generated from the zod schemas that validate requests
// (z.toJSONSchema emits JSON Schema 2020-12, which is OpenAPI 3.1's dialect).

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const err = (description: string) => ({ description, ...json(ref('Error')) });

/**
 * Components from zod schemas. Schemas carrying `.meta({ id })` come out as `$defs`; they are lifted into
 * `components.schemas` and their `$ref`s pointed there.
 */
function components(entries: Array<[z.ZodType, 'input' | 'output']>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [schema, io] of entries) {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as { $defs?: Record<string, unknown> };
    Object.assign(out, json.$defs ?? {});
  }
  return JSON.parse(JSON.stringify(out).replaceAll('"#/$defs/', '"#/components/schemas/')) as Record<string, unknown>;
}

const page = (item: string) => ({
  type: 'object',
  required: ['data', 'nextCursor'],
  properties: { data: { type: 'array', items: ref(item) }, nextCursor: { type: ['string', 'null'] } },
});

const pageParams = [
  { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
  { name: 'cursor', in: 'query', schema: { type: 'string' } },
];
const idParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });

function keyPaths(base: string, tag: string, extraParams: object[]) {
  const common = { tags: [tag], parameters: extraParams };
  const idParams = [...extraParams, idParam('id', 'Key id (self-service also accepts `current`: the calling key)')];
  return {
    [base]: {
      post: { ...common, summary: 'Create an API key', requestBody: json(ref('CreateApiKeyRequest')), responses: { 201: { description: 'Created; `key` is shown only here', ...json(ref('CreatedApiKey')) }, 400: err('validation_error'), 409: err('key_limit_reached') } },
      get: { ...common, parameters: [...extraParams, ...pageParams], summary: 'List API keys', description: 'Only the keys the caller has authority over: those whose every permission its own permissions cover, and itself (the admin token sees every key). A narrow key never sees a wider key. Filtering can leave a page with fewer than `limit` keys while `nextCursor` is not null: follow `nextCursor` until it is null.', responses: { 200: { description: 'A page of keys', ...json(page('ApiKey')) } } },
    },
    [`${base}/{id}`]: {
      get: { tags: [tag], parameters: idParams, summary: 'Get an API key', responses: { 200: { description: 'The key', ...json(ref('ApiKey')) }, 404: err('not_found') } },
      patch: { tags: [tag], parameters: idParams, summary: 'Update an API key (permissions narrow only)', requestBody: json(ref('UpdateApiKeyRequest')), responses: { 200: { description: 'The updated key', ...json(ref('ApiKey')) }, 400: err('validation_error') } },
      delete: { tags: [tag], parameters: idParams, summary: 'Revoke an API key', responses: { 204: { description: 'Revoked' }, 409: err('cannot_revoke_current_key') } },
    },
    [`${base}/{id}/rotate`]: {
      post: { tags: [tag], parameters: idParams, summary: 'Rotate an API key', requestBody: { required: false, ...json(ref('RotateApiKeyRequest')) }, responses: { 201: { description: 'The new value; the old one stops now or after gracePeriodSeconds', ...json(ref('CreatedApiKey')) } } },
    },
  };
}

export function buildOpenApi(version: string): object {
  const tenantParam = [idParam('tenantId', 'Tenant id')];
  return {
    openapi: '3.1.0',
    info: { title: 'keygate management API', version, description: 'Self-service (public listener, API key) and platform admin (internal listener, admin token) APIs.' },
    servers: [{ url: '/', description: 'Self-service paths on the public listener; /admin/v1 paths on the internal listener' }],
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearerKey: { type: 'http', scheme: 'bearer', description: 'An API key, or the admin token on /admin/v1' },
      },
      schemas: components([
        [s.apiKeySchema, 'output'],
        [s.createdApiKeySchema, 'output'],
        [s.tenantSchema, 'output'],
        [s.planSchema, 'output'],
        [s.auditEntrySchema, 'output'],
        [s.usageRowSchema, 'output'],
        [s.overviewSchema, 'output'],
        [s.errorSchema, 'output'],
        [s.createKeyBody, 'input'],
        [s.updateKeyBody, 'input'],
        [s.rotateKeyBody, 'input'],
        [s.createTenantBody, 'input'],
        [s.updateTenantBody, 'input'],
      ]),
    },
    security: [{ apiKey: [] }, { bearerKey: [] }],
    paths: {
      '/keygate/v1/openapi.json': { get: { tags: ['self-service'], security: [], summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/keygate/v1/tenants/me': {
        get: { tags: ['self-service'], summary: "The caller's tenant, plan and key count", responses: { 200: { description: 'Summary', ...json({ type: 'object', properties: { tenant: ref('Tenant'), plan: ref('Plan'), keyCount: { type: 'integer' } } }) } } },
      },
      ...keyPaths('/keygate/v1/api-keys', 'self-service', []),
      '/keygate/v1/usage': {
        get: {
          tags: ['self-service'],
          summary: 'Request and WebSocket session counts per day or month',
          parameters: [
            { name: 'granularity', in: 'query', schema: { type: 'string', enum: ['day', 'month'], default: 'day' } },
            { name: 'from', in: 'query', schema: { type: 'string', format: 'date' } },
            { name: 'to', in: 'query', schema: { type: 'string', format: 'date' } },
            { name: 'keyId', in: 'query', schema: { type: 'string' } },
          ],
          responses: { 200: { description: 'Usage rows', ...json({ type: 'object', properties: { data: { type: 'array', items: ref('UsageRow') } } }) } },
        },
      },
      '/keygate/v1/audit-log': {
        get: { tags: ['self-service'], parameters: pageParams, summary: "The tenant's audit log, newest first", responses: { 200: { description: 'A page of entries', ...json(page('AuditEntry')) } } },
      },
      '/admin/v1/tenants': {
        post: { tags: ['admin'], security: [{ bearerKey: [] }], summary: 'Create a tenant and its first key (permissions `*`)', requestBody: json(ref('CreateTenantRequest')), responses: { 201: { description: 'Created', ...json({ type: 'object', properties: { tenant: ref('Tenant'), apiKey: ref('CreatedApiKey') } }) } } },
        get: { tags: ['admin'], security: [{ bearerKey: [] }], parameters: pageParams, summary: 'List tenants', responses: { 200: { description: 'A page of tenants', ...json(page('Tenant')) } } },
      },
      '/admin/v1/tenants/{tenantId}': {
        get: { tags: ['admin'], security: [{ bearerKey: [] }], parameters: tenantParam, summary: 'Get a tenant', responses: { 200: { description: 'The tenant', ...json(ref('Tenant')) }, 404: err('not_found') } },
        patch: { tags: ['admin'], security: [{ bearerKey: [] }], parameters: tenantParam, summary: 'Update a tenant (plan, maxKeys, status)', requestBody: json(ref('UpdateTenantRequest')), responses: { 200: { description: 'The tenant', ...json(ref('Tenant')) } } },
        delete: { tags: ['admin'], security: [{ bearerKey: [] }], parameters: tenantParam, summary: 'Delete a tenant, revoking every key', responses: { 204: { description: 'Deleted' } } },
      },
      '/admin/v1/tenants/{tenantId}/audit-log': {
        get: { tags: ['admin'], security: [{ bearerKey: [] }], parameters: [...tenantParam, ...pageParams], summary: "A tenant's audit log", responses: { 200: { description: 'A page of entries', ...json(page('AuditEntry')) } } },
      },
      ...keyPaths('/admin/v1/tenants/{tenantId}/api-keys', 'admin', tenantParam),
      '/admin/v1/overview': {
        get: { tags: ['admin'], security: [{ bearerKey: [] }], summary: 'Fleet totals', responses: { 200: { description: 'Totals', ...json(ref('Overview')) } } },
      },
    },
  };
}
