import { pageQuery, usageQuery } from '../schemas.ts';
import { json, queryParameters, ref, security, selfServiceErrors } from './components.ts';
import { keyPaths } from './keys.ts';
import { webhookPaths } from './webhooks.ts';

// `/keygate/v1` on the public listener: a tenant manages its own keys with one of them. Every
// authenticated operation passes the proxy's gate first, so each can answer its 401, 403, 429 and 503.

export const PUBLIC_SERVER = [
  {
    url: 'http://{host}:{port}',
    description: 'Public listener (`server.port`): the proxy and /keygate/v1',
    variables: { host: { default: 'localhost' }, port: { default: '8080' } },
  },
];

const op = { tags: ['self-service'], security: security.selfService };

export function selfServicePaths() {
  return {
    '/keygate/v1/openapi.json': {
      servers: PUBLIC_SERVER,
      get: {
        tags: ['self-service'],
        operationId: 'getOpenApiDocument',
        summary: 'This document',
        security: [],
        responses: {
          200: { description: 'The OpenAPI 3.1 document of both APIs', ...json({ type: 'object', required: ['openapi', 'info', 'paths'], properties: { openapi: { type: 'string' }, info: { type: 'object' }, paths: { type: 'object' } } }) },
          400: selfServiceErrors({ permission: false })[400],
          500: ref('responses', 'InternalError'),
        },
      },
    },
    '/keygate/v1/tenants/me': {
      servers: PUBLIC_SERVER,
      get: {
        ...op,
        operationId: 'getMyTenant',
        summary: "The caller's tenant, plan and key count",
        description: 'Any valid private key.',
        responses: { 200: { description: 'The tenant', ...json(ref('schemas', 'TenantSummary')) }, ...selfServiceErrors({ permission: false }) },
      },
    },
    ...keyPaths('self-service', '/keygate/v1/api-keys', PUBLIC_SERVER),
    '/keygate/v1/usage': {
      servers: PUBLIC_SERVER,
      get: {
        ...op,
        operationId: 'getUsage',
        summary: 'Request and WebSocket session counts per day or month',
        description: 'Needs `usage:read`; with `keyId`, authority over that key too (403 otherwise).',
        parameters: queryParameters(usageQuery),
        responses: { 200: { description: 'Usage rows, oldest first', ...json(ref('schemas', 'UsageReport')) }, ...selfServiceErrors({ permission: true, query: true }) },
      },
    },
    '/keygate/v1/audit-log': {
      servers: PUBLIC_SERVER,
      get: {
        ...op,
        operationId: 'listAuditLog',
        summary: "The tenant's audit log, newest first",
        description: 'Needs `audit:read`.',
        parameters: queryParameters(pageQuery),
        responses: { 200: { description: 'A page of entries', ...json(ref('schemas', 'AuditEntryPage')) }, ...selfServiceErrors({ permission: true, query: true }) },
      },
    },
    '/keygate/v1/session-tokens': {
      servers: PUBLIC_SERVER,
      post: {
        ...op,
        operationId: 'mintSessionToken',
        summary: 'Mint a session token for a browser or phone',
        description:
          'A short-lived, signed credential (`kg_st_...`) narrowed to at most the calling key\'s scope, for a client that must never hold a key. ' +
          'It is accepted as `Authorization: Bearer`, and on WebSocket upgrades as `?token=` or the subprotocol pair `keygate.token, <token>`; ' +
          'everything it does counts against the calling key. Needs a private key holding `session-tokens:write`; a token asking for more than the key holds is refused 403.',
        requestBody: ref('requestBodies', 'MintSessionToken'),
        responses: { 201: { description: 'The token; `token` is shown only here', ...json(ref('schemas', 'MintedSessionToken')) }, ...selfServiceErrors({ permission: true, body: true, addressed: true }) },
      },
    },
    '/keygate/v1/session-tokens/current': {
      servers: PUBLIC_SERVER,
      get: {
        ...op,
        operationId: 'getCurrentSessionToken',
        summary: 'The presented session token',
        description: 'The one management operation a session token may call (as `Authorization: Bearer`); a key gets 404.',
        responses: { 200: { description: 'The token', ...json(ref('schemas', 'SessionToken')) }, ...selfServiceErrors({ permission: true, addressed: true }) },
      },
    },
    ...webhookPaths('self-service', '/keygate/v1/webhooks', PUBLIC_SERVER),
  };
}
