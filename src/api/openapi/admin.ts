import { keysUsageQuery, pageQuery, tenantSearchQuery, usageQuery } from '../schemas.ts';
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
    '/admin/v1/audit-log': {
      servers: INTERNAL_SERVER,
      get: {
        ...op,
        operationId: 'adminListPlatformAuditLog',
        summary: "The platform's audit log, newest first",
        description:
          "Writes that belong to no tenant, each naming its operator (`actor`: `operator:<name>`, or `admin` for `admin.token`): the platform's webhook endpoints created (`webhook.created`), enabled again (`webhook.enabled`), deleted (`webhook.deleted`), their secret rotated (`webhook.secret_rotated`, never the secret itself) and dead letters redelivered (`webhook.redelivered`). Capped at `audit.maxEntries`, the oldest dropped. A tenant's own endpoints are audited in that tenant's log.",
        parameters: queryParameters(pageQuery),
        responses: { 200: { description: 'A page of entries', ...json(ref('schemas', 'AuditEntryPage')) }, ...adminErrors({ query: true }) },
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
    '/admin/v1/tenant-search': {
      servers: INTERNAL_SERVER,
      get: {
        ...op,
        operationId: 'adminSearchTenants',
        summary: 'Tenants whose name or id contains `q` (case-insensitive), with their key counts',
        description: 'Reads at most 20,000 tenants (`truncated` says when it stopped there); without `q`, the first tenants.',
        parameters: queryParameters(tenantSearchQuery),
        responses: { 200: { description: 'Matching tenants', ...json(ref('schemas', 'TenantSearch')) }, ...adminErrors({ query: true }) },
      },
    },
    '/admin/v1/tenants/{tenantId}/summary': {
      servers: INTERNAL_SERVER,
      parameters: tenant,
      get: {
        ...op,
        operationId: 'adminGetTenantSummary',
        summary: 'A tenant with its plan and key count',
        responses: { 200: { description: 'The tenant, its plan, its key count', ...json(ref('schemas', 'TenantSummary')) }, ...adminErrors({ addressed: true }) },
      },
    },
    '/admin/v1/tenants/{tenantId}/usage': {
      servers: INTERNAL_SERVER,
      parameters: tenant,
      get: {
        ...op,
        operationId: 'adminGetTenantUsage',
        summary: "A tenant's (or, with keyId, one key's) requests and sessions per hour, day or month",
        description: 'Hours: at most 14 days (kept 15 days), default the last 7 days ending with the current hour. Days: at most 366, default 30. Months: at most 60, default 12.',
        parameters: queryParameters(usageQuery),
        responses: { 200: { description: 'Usage rows, oldest first', ...json(ref('schemas', 'UsageReport')) }, ...adminErrors({ query: true, addressed: true }) },
      },
    },
    '/admin/v1/tenants/{tenantId}/keys-usage': {
      servers: INTERNAL_SERVER,
      parameters: tenant,
      get: {
        ...op,
        operationId: 'adminGetKeysUsage',
        summary: "Usage of up to 100 of a tenant's keys in one day or month (the console's quota-use column)",
        parameters: queryParameters(keysUsageQuery),
        responses: { 200: { description: 'One row per key id asked for, in the order asked', ...json(ref('schemas', 'KeysUsage')) }, ...adminErrors({ query: true, addressed: true }) },
      },
    },
    '/admin/v1/whoami': {
      servers: INTERNAL_SERVER,
      get: {
        ...op,
        operationId: 'adminWhoAmI',
        summary: 'The calling operator and its role',
        responses: { 200: { description: 'The operator', ...json(ref('schemas', 'Operator')) }, ...adminErrors({}) },
      },
    },
    '/admin/v1/fleet': {
      servers: INTERNAL_SERVER,
      get: {
        ...op,
        operationId: 'adminGetFleet',
        summary: "The console's fleet view: decisions per minute, top tenants, blocked addresses, webhook health, Redis",
        responses: { 200: { description: 'The fleet', ...json(ref('schemas', 'Fleet')) }, ...adminErrors({}) },
      },
    },
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
