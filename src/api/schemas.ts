import { z } from 'zod';
import { PERMISSION } from '../auth/permissions.ts';
import { codeToStatus, type ErrorCode } from '../http/errors.ts';
import { KEY_ID } from '../keys/ids.ts';

// Request and response schemas of both management APIs. The same objects validate requests and
// generate the OpenAPI document, so the two cannot disagree. Request objects are strict: an unknown field
// is a 400 `validation_error` naming it.

const isoDate = z.iso.datetime({ offset: true });
const permission = z.string().regex(PERMISSION, 'must be "*", "resource:*" or "resource:action"');
const origin = z
  .string()
  .regex(/^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be an origin such as https://app.example.com or https://*.example.com');
const fingerprint = z
  .string()
  .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'must be a SHA-256 fingerprint (64 hex digits, colons allowed)')
  .transform((s) => s.replaceAll(':', '').toLowerCase());
/**
 * At most `max` bytes as JSON. A value nested deeper than the stack overflows JSON.stringify: it is far over any
 * such bound (two bytes a level), so it fails the check rather than the request.
 */
const jsonAtMost = (max: number) => (m: unknown): boolean => {
  try {
    return Buffer.byteLength(JSON.stringify(m)) <= max;
  } catch {
    return false;
  }
};
const metadata = z
  .record(z.string(), z.unknown())
  .refine(jsonAtMost(1024), 'must be at most 1 KiB as JSON');
const positiveInt = z.number().int().positive();
const keyIdParam = z.string().regex(KEY_ID, 'must be a key id');

export const rateLimitInput = z.strictObject({
  requestsPerMinute: positiveInt.nullable().optional(),
  requestsPerDay: positiveInt.nullable().optional(),
});

export const quotaInput = z.strictObject({
  requestsPerMonth: positiveInt.nullable().optional(),
  sessionMinutesPerMonth: positiveInt.nullable().optional(),
});

const keySettings = {
  name: z.string().min(1).max(100).nullable(),
  permissions: z.array(permission).max(100),
  allowedOrigins: z.array(origin).max(100).nullable(),
  allowedAssistants: z.array(z.string().min(1).max(200)).max(1000).nullable(),
  transientAssistant: z.boolean(),
  rateLimit: rateLimitInput,
  quota: quotaInput,
  maxConcurrentConnections: positiveInt.nullable(),
  enforceMtls: z.boolean(),
  clientCertFingerprints: z.array(fingerprint).max(100).nullable(),
  metadata,
};

export const createKeyBody = z
  .strictObject({
    ...keySettings,
    keyType: z.enum(['private', 'public']).default('private'),
    expiresAt: isoDate.optional(),
    expiresInDays: positiveInt.nullable().optional(),
  })
  .partial({ name: true, permissions: true, allowedOrigins: true, allowedAssistants: true, transientAssistant: true, rateLimit: true, quota: true, maxConcurrentConnections: true, enforceMtls: true, clientCertFingerprints: true, metadata: true })
  .meta({ id: 'CreateApiKeyRequest' });

export const updateKeyBody = z
  .strictObject({ ...keySettings, isActive: z.boolean(), expiresAt: isoDate.nullable() })
  .partial()
  .meta({ id: 'UpdateApiKeyRequest' });

export const rotateKeyBody = z
  .strictObject({ gracePeriodSeconds: z.number().int().min(0).max(7 * 86_400).default(0) })
  .meta({ id: 'RotateApiKeyRequest' });

export const createTenantBody = z
  .strictObject({
    name: z.string().min(1).max(100),
    plan: z.string().min(1).optional(),
    maxKeys: positiveInt.max(100_000).optional(),
  })
  .meta({ id: 'CreateTenantRequest' });

export const updateTenantBody = z
  .strictObject({
    name: z.string().min(1).max(100),
    plan: z.string().min(1),
    maxKeys: positiveInt.max(100_000),
    status: z.enum(['active', 'suspended']),
  })
  .partial()
  .meta({ id: 'UpdateTenantRequest' });

export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(200).optional(),
});

export const tenantSearchQuery = z.strictObject({
  q: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

export const keysUsageQuery = z.strictObject({
  period: z.string().regex(/^\d{4}-\d{2}(-\d{2})?$/, 'YYYY-MM or YYYY-MM-DD'),
  keyIds: z
    .string()
    .max(3_100)
    .transform((s) => s.split(','))
    .pipe(z.array(z.string().regex(KEY_ID, 'a key id')).min(1).max(100))
    .describe('Comma-separated key ids, at most 100'),
});

export const usageQuery = z.strictObject({
  granularity: z.enum(['hour', 'day', 'month']).default('day'),
  from: z.iso.date().optional(),
  to: z.iso.date().optional(),
  keyId: keyIdParam.optional(),
});

// Responses (documentation only; handlers build them from typed records).
export const apiKeySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    name: z.string().nullable(),
    keyType: z.enum(['private', 'public']),
    prefix: z.string(),
    permissions: z.array(z.string()),
    allowedOrigins: z.array(z.string()).nullable(),
    allowedAssistants: z.array(z.string()).nullable(),
    transientAssistant: z.boolean(),
    rateLimit: z.object({ requestsPerMinute: z.number().int().nullable(), requestsPerDay: z.number().int().nullable() }),
    quota: z
      .object({ requestsPerMonth: z.number().int().nullable(), sessionMinutesPerMonth: z.number().int().nullable() })
      .describe(
        "Monthly quotas (calendar month, UTC); null = none of the key's own (the plan's maximum still caps the tenant). A key's requests and session minutes also count against every monthly quota of the keys that created it (its creator chain, with the quotas they held when it was made), so minting, using and revoking children cannot create quota",
      ),
    maxConcurrentConnections: z.number().int().nullable(),
    enforceMtls: z.boolean(),
    clientCertFingerprints: z.array(z.string()).nullable(),
    metadata: z.record(z.string(), z.unknown()),
    isActive: z.boolean(),
    createdAt: isoDate,
    updatedAt: isoDate,
    expiresAt: isoDate.nullable(),
    lastUsedAt: isoDate.nullable(),
    createdBy: z.string(),
  })
  .meta({ id: 'ApiKey' });

export const createdApiKeySchema = apiKeySchema
  .extend({ key: z.string(), message: z.string() })
  .meta({ id: 'CreatedApiKey' });

export const tenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    plan: z.string(),
    maxKeys: z.number().int(),
    status: z.enum(['active', 'suspended']),
    createdAt: isoDate,
    updatedAt: isoDate,
  })
  .meta({ id: 'Tenant' });

const limitPair = z.object({ default: z.number().int().nullable(), max: z.number().int().nullable() });
export const planSchema = z
  .object({
    name: z.string(),
    maxKeys: z.number().int(),
    requestsPerMinute: limitPair,
    requestsPerDay: limitPair,
    maxConcurrentConnections: limitPair,
    requestsPerMonth: limitPair,
    sessionMinutesPerMonth: limitPair,
    maxInFlight: z.number().int().nullable().describe('Upstream requests the tenant may have in flight at once (null: no cap)'),
  })
  .meta({ id: 'Plan' });

export const auditEntrySchema = z
  .object({
    id: z.string(),
    at: isoDate,
    action: z.string(),
    actor: z.string(),
    keyId: z.string().nullable(),
    details: z
      .record(z.string(), z.unknown())
      .describe(
        'What the action did. A `key.access_denied` entry stands for every refusal of one actor, key and operation in one `audit.refusalWindowSeconds` window (default an hour): it is written again at each repeat, newest first, with `count` (refusals so far in the window) and `firstAt` (the first of them), so refusals cannot push lifecycle records out of the capped log',
      ),
  })
  .meta({ id: 'AuditEntry' });

export const usageRowSchema = z
  .object({
    period: z.string().describe('YYYY-MM-DDTHH (granularity hour, UTC), YYYY-MM-DD (day) or YYYY-MM (month)'),
    requests: z.number().int(),
    allowed: z.number().int(),
    denied: z.number().int(),
    rateLimited: z.number().int(),
    sessions: z.number().int().describe('WebSocket sessions opened in the period'),
    sessionSeconds: z.number().describe('Their time in the period, in seconds (millisecond precision); a session spanning an hour boundary is split'),
    refusals: z
      .record(z.string(), z.number().int())
      .optional()
      .describe('The tenant\'s refused requests in the period by error code (`rate_limited`, `quota_exceeded`, `key_disabled`…; nonzero codes only). On a tenant\'s rows only: a key\'s rows (`keyId`) have none'),
  })
  .meta({ id: 'UsageRow' });

const page = <T extends z.ZodType>(item: T, id: string) =>
  z.object({ data: z.array(item), nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last') }).meta({ id });

export const apiKeyPageSchema = page(apiKeySchema, 'ApiKeyPage');
export const tenantPageSchema = page(tenantSchema, 'TenantPage');
export const auditEntryPageSchema = page(auditEntrySchema, 'AuditEntryPage');

export const tenantSummarySchema = z
  .object({ tenant: tenantSchema, plan: planSchema, keyCount: z.number().int() })
  .meta({ id: 'TenantSummary' });

export const createdTenantSchema = z
  .object({ tenant: tenantSchema, apiKey: createdApiKeySchema })
  .meta({ id: 'CreatedTenant' });

export const usageReportSchema = z.object({ data: z.array(usageRowSchema) }).meta({ id: 'UsageReport' });

export const keysUsageSchema = z
  .object({ data: z.array(usageRowSchema.extend({ keyId: z.string() })) })
  .meta({ id: 'KeysUsage' });

export const overviewSchema = z
  .object({
    tenants: z.number().int(),
    keys: z.number().int(),
    requestsToday: z.number().int(),
    sessionsToday: z.number().int(),
    sessionSecondsToday: z.number(),
  })
  .meta({ id: 'Overview' });

export const operatorSchema = z
  .object({ name: z.string().describe('`admin` for admin.token, else the operator name from admin.tokens'), role: z.enum(['read', 'write']) })
  .meta({ id: 'Operator' });

export const tenantSearchSchema = z
  .object({
    data: z.array(tenantSchema.extend({ keyCount: z.number().int() })),
    scanned: z.number().int().describe('Tenants read'),
    truncated: z.boolean().describe('The search stopped after 20,000 tenants without filling `limit`'),
  })
  .meta({ id: 'TenantSearch' });

const decisionCounts = z.object({ allowed: z.number().int(), 401: z.number().int(), 403: z.number().int(), 429: z.number().int(), 503: z.number().int(), other: z.number().int() });

export const fleetSchema = z
  .object({
    generatedAt: isoDate,
    store: z.enum(['redis', 'memory']),
    redis: z.object({ status: z.enum(['up', 'down']), latencyMs: z.number().nullable() }).nullable().describe("The readiness check's view of the store"),
    decisionsPerMinute: z
      .array(z.object({ at: isoDate, counts: decisionCounts }))
      .describe("This process's decisions per minute over the last 3 hours (oldest first), by status: allowed, 401, 403, 429, 503, other"),
    topTenants: z.object({
      data: z.array(z.object({ id: z.string(), name: z.string(), plan: z.string(), status: z.string(), requestsToday: z.number().int() })),
      scanned: z.number().int(),
      truncated: z.boolean().describe('More than 10,000 tenants: the ranking covers the first 10,000'),
    }).describe("Up to 10 tenants with the most requests today (UTC), from the stored usage counters"),
    blockedAddresses: z
      .array(z.object({ ip: z.string(), blockedAt: isoDate, blockedUntil: isoDate }))
      .describe('Addresses this process blocked for failed authentication whose block has not ended (at most 100, newest first)'),
    webhooks: z.object({ enabled: z.boolean(), endpoints: z.number().int(), failing: z.number().int(), disabled: z.number().int(), deadLetters: z.number().int() }),
  })
  .meta({ id: 'Fleet' });

export const errorSchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(codeToStatus) as [ErrorCode, ...ErrorCode[]]).describe('The machine code; the status it comes with is fixed per code (docs/http-api.md)'),
      message: z.string(),
      requestId: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .meta({ id: 'Error' });

export type CreateKeyBody = z.infer<typeof createKeyBody>;
export type UpdateKeyBody = z.infer<typeof updateKeyBody>;
export type CreateTenantBody = z.infer<typeof createTenantBody>;
export type UpdateTenantBody = z.infer<typeof updateTenantBody>;

/** What a session token is minted with (POST /keygate/v1/session-tokens); unset narrowing follows the key. */
const sessionTokenSettings = {
  ttlSeconds: z.number().int().min(10).max(3600).default(60),
  permissions: z.array(permission).min(1).max(100).optional(),
  assistantId: z.string().min(1).max(200).optional(),
  allowedAssistants: z.array(z.string().min(1).max(200)).min(1).max(100).optional(),
  allowedOrigins: z.array(origin).min(1).max(20).optional(),
  maxSessions: z.number().int().min(0).max(1000).default(1),
  maxUses: positiveInt.max(1_000_000).nullable().default(null),
  metadata: z
    .record(z.string(), z.unknown())
    .refine(jsonAtMost(512), 'must be at most 512 bytes as JSON')
    .optional(),
};

export const mintSessionTokenBody = z.strictObject(sessionTokenSettings).meta({ id: 'MintSessionTokenRequest' });
export type MintSessionTokenBody = z.infer<typeof mintSessionTokenBody>;

/** The admin API mints for one of the tenant's keys: the key that is charged for what the token does. */
export const adminMintSessionTokenBody = z
  .strictObject({ ...sessionTokenSettings, keyId: keyIdParam })
  .meta({ id: 'AdminMintSessionTokenRequest' });

/** A session token as minted (without `token`, as its status read answers). */
export const sessionTokenSchema = z
  .object({
    id: z.string().describe('Token id (`tok_` + ULID), forwarded upstream as X-Session-Token-Id'),
    tenantId: z.string(),
    keyId: z.string().describe('The minting key: it is charged for everything the token does, and the token dies with it'),
    issuedAt: isoDate,
    expiresAt: isoDate.describe('Never later than the minting key\'s own expiry'),
    permissions: z.array(z.string()).nullable().describe("null: the minting key's permissions, as they are at each request"),
    allowedAssistants: z.array(z.string()).nullable(),
    allowedOrigins: z.array(z.string()).nullable(),
    maxSessions: z.number().int().describe('WebSocket sessions the token may open over its life'),
    maxUses: z.number().int().nullable().describe('HTTP requests the token may make over its life; null: no count'),
    metadata: z.record(z.string(), z.unknown()).nullable().describe('Forwarded upstream as X-Session-Token-Metadata (JSON)'),
  })
  .meta({ id: 'SessionToken' });

export const mintedSessionTokenSchema = sessionTokenSchema
  .extend({ token: z.string().describe('The token (`kg_st_...`): hand it to the client; it is not stored anywhere') })
  .meta({ id: 'MintedSessionToken' });
