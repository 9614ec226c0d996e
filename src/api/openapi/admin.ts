import { pageQuery } from '../schemas.ts';
import { adminErrors, errorResponse, json, queryParameters, ref, security } from './components.ts';
import { keyPaths } from './keys.ts';
import { webhookPaths } from './webhooks.ts';

// `/admin/v1` on the internal listener: the platform manages every tenant with the admin token.

export const INTERNAL_SERVER = [
  {
    url: 'http://{host}:{port}',
    description: 'Internal listener (`server.opsPort`): /admin/v1, health and metrics; never exposed publicly',
    variables: { host: { default: 'localhost' }, port: { default: '9090' } },
  },
];

const op = { tags: ['admin'], security: security.admin };
const tenant = [ref('parameters', 'TenantId')];

export function adminPaths() {
  return {
    '/admin/v1/tenants': {
      servers: INTERNAL_SERVER,
      post: {
        ...op,
        operationId: 'adminCreateTenant',
        summary: 'Create a tenant and its first key (permissions `*`)',
        requestBody: ref('requestBodies', 'CreateTenant'),
        responses: { 201: { description: "The tenant and its first key; the key's value is shown only here", ...json(ref('schemas', 'CreatedTenant')) }, ...adminErrors({ body: true }) },
      },
      get: {
        ...op,
        operationId: 'adminListTenants',
        summary: 'List tenants',
        parameters: queryParameters(pageQuery),
        responses: { 200: { description: 'A page of tenants', ...json(ref('schemas', 'TenantPage')) }, ...adminErrors({ query: true }) },
      },
    },
    '/admin/v1/tenants/{tenantId}': {
      servers: INTERNAL_SERVER,
      parameters: tenant,
      get: {
        ...op,
        operationId: 'adminGetTenant',
        summary: 'Get a tenant',
        responses: { 200: { description: 'The tenant', ...json(ref('schemas', 'Tenant')) }, ...adminErrors({ addressed: true }) },
      },
      patch: {
        ...op,
        operationId: 'adminUpdateTenant',
        summary: 'Update a tenant (name, plan, maxKeys, status)',
        description: 'Suspending a tenant makes every one of its keys fail with `tenant_suspended`.',
        requestBody: ref('requestBodies', 'UpdateTenant'),
        responses: { 200: { description: 'The tenant', ...json(ref('schemas', 'Tenant')) }, ...adminErrors({ body: true, addressed: true }) },
      },
      delete: {
        ...op,
        operationId: 'adminDeleteTenant',
        summary: 'Delete a tenant, revoking every key',
        responses: { 204: { description: 'Deleted' }, ...adminErrors({ addressed: true }) },
      },
    },
    '/admin/v1/tenants/{tenantId}/audit-log': {
      servers: INTERNAL_SERVER,
      parameters: tenant,
      get: {
        ...op,
        operationId: 'adminListTenantAuditLog',
        summary: "A tenant's audit log, newest first",
        parameters: queryParameters(pageQuery),
        responses: { 200: { description: 'A page of entries', ...json(ref('schemas', 'AuditEntryPage')) }, ...adminErrors({ query: true, addressed: true }) },
      },
    },
    '/admin/v1/tenants/{tenantId}/session-tokens': {
      servers: INTERNAL_SERVER,
      parameters: tenant,
      post: {
        ...op,
        operationId: 'adminMintSessionToken',
        summary: "Mint a session token with one of the tenant's keys",
        description: 'As the self-service mint, for the key named by `keyId`: it is charged for everything the token does, and the token dies with it.',
        requestBody: ref('requestBodies', 'AdminMintSessionToken'),
        responses: {
          201: { description: 'The token; `token` is shown only here', ...json(ref('schemas', 'MintedSessionToken')) },
          ...adminErrors({ body: true, addressed: true }),
          401: errorResponse(['missing_api_key', 'invalid_api_key', 'key_disabled', 'key_expired'], { 'WWW-Authenticate': ref('headers', 'WwwAuthenticate') }),
          403: errorResponse(['insufficient_permissions', 'public_key_not_allowed', 'tenant_suspended']),
        },
      },
    },
    ...keyPaths('admin', '/admin/v1/tenants/{tenantId}/api-keys', INTERNAL_SERVER),
    ...webhookPaths('admin', '/admin/v1/webhooks', INTERNAL_SERVER),
    '/admin/v1/overview': {
      servers: INTERNAL_SERVER,
      get: {
        ...op,
        operationId: 'adminGetOverview',
        summary: 'Fleet totals',
        responses: { 200: { description: 'Tenants, keys and requests today', ...json(ref('schemas', 'Overview')) }, ...adminErrors({}) },
      },
    },
  };
}
