// Examples for the OpenAPI document: one value per response schema, request body and path parameter, attached
// to every operation by `withExamples` (so an operation added later gets the example of the schema it answers
// with, and test/unit/api/openapi-examples.test.ts fails when one has none). Redocly's lint checks every example
// against its schema; the values are shaped like what keygate answers (ids, key prefixes, dates).

type Json = Record<string, unknown>;

const TENANT_ID = 'ten_01JF3Q8ZK6V7W2N4R5T8Y9B0CD';
const KEY_ID = 'key_01JF3Q9A1B2C3D4E5F6G7H8J9K';
const WEBHOOK_ID = 'whe_01JF3QB7M8N9P0Q1R2S3T4V5W6';
const AT = '2026-03-02T09:15:27.512Z';
const limits = { requestsPerMinute: { default: 600, max: 6000 }, requestsPerDay: { default: 500000, max: 5000000 } };

const tenant = { id: TENANT_ID, name: 'Acme Voice', plan: 'pro', maxKeys: 25, status: 'active', createdAt: AT, updatedAt: AT };
const apiKey = {
  id: KEY_ID,
  tenantId: TENANT_ID,
  name: 'dialer',
  keyType: 'private',
  prefix: 'kg_sk_7Hq2xW',
  permissions: ['calls:read', 'calls:write'],
  allowedOrigins: null,
  allowedAssistants: null,
  transientAssistant: false,
  rateLimit: { requestsPerMinute: 100, requestsPerDay: null },
  quota: { requestsPerMonth: null, sessionMinutesPerMonth: null },
  maxConcurrentConnections: null,
  enforceMtls: false,
  clientCertFingerprints: null,
  metadata: { team: 'outbound' },
  isActive: true,
  createdAt: AT,
  updatedAt: AT,
  expiresAt: '2026-05-31T09:15:27.512Z',
  lastUsedAt: null,
  createdBy: 'admin',
};
const createdApiKey = { ...apiKey, key: 'kg_sk_7Hq2xWm4Rz8Pk1Ld9Vt3Ns6Yb0Qf3a9KxT', message: 'Store this key securely. It will not be shown again.' };
const webhookEndpoint = {
  id: WEBHOOK_ID,
  url: 'https://hooks.example.com/keygate',
  description: 'key lifecycle to the billing system',
  events: ['key.created', 'key.revoked'],
  secretsActive: 1,
  failingSince: null,
  disabledAt: null,
  createdAt: AT,
  updatedAt: AT,
};

const sessionToken = {
  id: 'tok_01JF3QD4E5F6G7H8J9K0M1N2P3',
  tenantId: TENANT_ID,
  keyId: KEY_ID,
  issuedAt: AT,
  expiresAt: '2026-03-02T09:16:27.512Z',
  permissions: ['voice:connect'],
  allowedAssistants: ['asst_support'],
  allowedOrigins: ['https://app.example.com'],
  maxSessions: 1,
  maxUses: null,
  metadata: { userId: 'u_8841' },
};
const mintSessionToken = { ttlSeconds: 60, permissions: ['voice:connect'], allowedAssistants: ['asst_support'], allowedOrigins: ['https://app.example.com'], metadata: { userId: 'u_8841' } };

/** By response schema (`components.schemas.<name>`). */
const responses: Record<string, unknown> = {
  Tenant: tenant,
  TenantPage: { data: [tenant], nextCursor: null },
  CreatedTenant: { tenant, apiKey: { ...createdApiKey, name: null, permissions: ['*'], rateLimit: { requestsPerMinute: 600, requestsPerDay: 500000 }, metadata: {} } },
  TenantSummary: {
    tenant,
    plan: {
      name: 'pro',
      maxKeys: 25,
      ...limits,
      maxConcurrentConnections: { default: 20, max: 200 },
      requestsPerMonth: { default: 10000000, max: 100000000 },
      sessionMinutesPerMonth: { default: 50000, max: 500000 },
      maxInFlight: 128,
    },
    keyCount: 2,
  },
  ApiKey: apiKey,
  ApiKeyPage: { data: [apiKey], nextCursor: 'eyJrIjoia2V5XzAxSkYzUTlBMUIyQzNENEU1RjZHN0g4SjlLIn0' },
  CreatedApiKey: createdApiKey,
  UsageReport: { data: [{ period: '2026-03-02', requests: 1520, allowed: 1497, denied: 8, rateLimited: 15, sessions: 42, sessionSeconds: 8130.25 }] },
  AuditEntryPage: {
    data: [{ id: '1772442927512-0', at: AT, action: 'key.created', actor: 'admin', keyId: KEY_ID, details: { name: 'dialer', permissions: ['calls:read', 'calls:write'] } }],
    nextCursor: null,
  },
  Overview: { tenants: 12, keys: 87, requestsToday: 183422, sessionsToday: 961, sessionSecondsToday: 201844.5 },
  TenantSearch: { data: [{ ...tenant, keyCount: 2 }], scanned: 12, truncated: false },
  KeysUsage: { data: [{ period: '2026-03-02T09', requests: 212, allowed: 209, denied: 1, rateLimited: 2, sessions: 5, sessionSeconds: 981.5, keyId: KEY_ID }] },
  Operator: { name: 'alice', role: 'write' },
  Fleet: {
    generatedAt: AT,
    store: 'redis',
    redis: { status: 'up', latencyMs: 0.4 },
    decisionsPerMinute: [{ at: '2026-03-02T09:14:00.000Z', counts: { 401: 3, 403: 1, 429: 6, 503: 0, allowed: 1840, other: 0 } }],
    topTenants: { data: [{ id: TENANT_ID, name: 'Acme Voice', plan: 'pro', status: 'active', requestsToday: 183422 }], scanned: 12, truncated: false },
    blockedAddresses: [{ ip: '203.0.113.7', blockedAt: AT, blockedUntil: '2026-03-02T09:20:27.512Z' }],
    webhooks: { enabled: true, endpoints: 3, failing: 0, disabled: 0, deadLetters: 1 },
  },
  SessionToken: sessionToken,
  MintedSessionToken: { ...sessionToken, token: 'kg_st_eyJ2IjoxLCJraWQiOiJrMSJ9.c2lnbmF0dXJlLWV4YW1wbGU' },
  WebhookEndpoint: webhookEndpoint,
  CreatedWebhookEndpoint: { ...webhookEndpoint, secret: 'whsec_MfKQ9r8GKgRzjtE7Vb1xQYpJ3wH2nC5u' },
  WebhookEndpointList: { data: [webhookEndpoint] },
  WebhookDeliveryList: {
    data: [{ eventId: 'evt_01JF3QC2D3E4F5G6H7J8K9M0N1', eventType: 'key.revoked', attempt: 1, status: 200, ok: true, latencyMs: 84, error: null, at: AT, outcome: 'delivered', nextAttemptAt: null }],
  },
  WebhookDeadLetterList: {
    data: [
      {
        key: '1772442927512-3',
        endpointId: WEBHOOK_ID,
        attempts: 12,
        event: { id: 'evt_01JF3QC2D3E4F5G6H7J8K9M0N1', type: 'key.revoked', timestamp: AT, data: { tenantId: TENANT_ID, keyId: KEY_ID } },
      },
    ],
  },
};

/** By `components.requestBodies.<name>`. */
const requestBodies: Record<string, unknown> = {
  CreateApiKey: { name: 'dialer', permissions: ['calls:read', 'calls:write'], rateLimit: { requestsPerMinute: 100 }, expiresInDays: 90, metadata: { team: 'outbound' } },
  UpdateApiKey: { permissions: ['calls:read'], rateLimit: { requestsPerMinute: 50 } },
  RotateApiKey: { gracePeriodSeconds: 3600 },
  CreateTenant: { name: 'Acme Voice', plan: 'pro' },
  MintSessionToken: mintSessionToken,
  AdminMintSessionToken: { ...mintSessionToken, keyId: KEY_ID },
  UpdateTenant: { status: 'suspended' },
  CreateWebhookEndpoint: { url: 'https://hooks.example.com/keygate', description: 'key lifecycle to the billing system', events: ['key.created', 'key.revoked'] },
  RotateWebhookSecret: { gracePeriodSeconds: 86400 },
};

/** By path parameter name. */
const parameters: Record<string, string> = { id: KEY_ID, tenantId: TENANT_ID, endpointId: WEBHOOK_ID, key: '1772442927512-3' };

/** The document's own example (its schema is inline): the start of what it serves. */
const openApiDocumentExample = { openapi: '3.1.0', info: { title: 'keygate management API', version: '0.1.0' }, paths: {} };

const schemaName = (schema: unknown): string | null => {
  const ref = (schema as { $ref?: unknown } | undefined)?.$ref;
  return typeof ref === 'string' ? ref.split('/').at(-1)! : null;
};

const named = (value: unknown) => ({ example: { summary: 'Example', value } });

/** The document with an example on every success response, request body and path parameter. */
export function withExamples<T extends Json>(doc: T): T {
  const components = doc.components as { requestBodies: Record<string, Json>; parameters: Record<string, Json> };
  for (const [name, body] of Object.entries(components.requestBodies)) {
    const media = (body.content as Record<string, Json>)['application/json']!;
    if (requestBodies[name] !== undefined) media.examples = named(requestBodies[name]);
  }
  for (const parameter of Object.values(components.parameters)) {
    if (parameters[parameter.name as string]) parameter.example = parameters[parameter.name as string];
  }
  for (const item of Object.values(doc.paths as Record<string, Json>)) {
    for (const parameter of (item.parameters as Json[] | undefined) ?? []) {
      if (parameter.in === 'path' && parameters[parameter.name as string]) parameter.example = parameters[parameter.name as string];
    }
    for (const operation of Object.values(item)) {
      const { responses: responsesOf, operationId } = operation as { responses?: Record<string, Json>; operationId?: string };
      if (!responsesOf) continue;
      for (const [status, response] of Object.entries(responsesOf)) {
        const media = (response.content as Record<string, Json> | undefined)?.['application/json'];
        if (!status.startsWith('2') || !media) continue;
        const value = operationId === 'getOpenApiDocument' ? openApiDocumentExample : responses[schemaName(media.schema) ?? ''];
        if (value !== undefined) media.examples = named(value);
      }
    }
  }
  return doc;
}

