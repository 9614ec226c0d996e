import { z } from 'zod';
import * as s from '../schemas.ts';
import * as wh from '../../webhooks/schemas.ts';

// The building blocks of the OpenAPI document: component schemas generated from the zod schemas (output types
// for responses; input types for requests, so a field with a default is optional), the shared responses,
// headers and parameters, and the helpers the path files use to describe an operation's every response.

export const ref = (kind: 'schemas' | 'responses' | 'requestBodies' | 'parameters' | 'headers', name: string) => ({ $ref: `#/components/${kind}/${name}` });
export const json = (schema: object) => ({ content: { 'application/json': { schema } } });

type Json = Record<string, unknown>;

/** zod → JSON Schema 2020-12 (OpenAPI 3.1's dialect), with `$defs` pointed at `components.schemas`. */
function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): { root: Json; defs: Record<string, Json> } {
  const { $schema: _, $defs = {}, ...root } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json & { $defs?: Record<string, Json> };
  const relinked = JSON.parse(JSON.stringify({ root, $defs }).replaceAll('"#/$defs/', '"#/components/schemas/')) as { root: Json; $defs: Record<string, Json> };
  return { root: relinked.root, defs: relinked.$defs };
}

/** Response schemas: every zod schema with `.meta({ id })` becomes `components.schemas.<id>`. */
function responseSchemas(): Record<string, Json> {
  const out: Record<string, Json> = {};
  const schemas = [
    s.apiKeySchema, s.createdApiKeySchema, s.apiKeyPageSchema, s.tenantSchema, s.tenantPageSchema, s.createdTenantSchema,
    s.tenantSummarySchema, s.planSchema, s.auditEntryPageSchema, s.usageReportSchema, s.overviewSchema, s.errorSchema,
    s.operatorSchema, s.tenantSearchSchema, s.fleetSchema, s.keysUsageSchema,
    s.sessionTokenSchema, s.mintedSessionTokenSchema,
    ...wh.webhookResponseSchemas,
  ];
  for (const schema of schemas) Object.assign(out, toJsonSchema(schema, 'output').defs);
  return out;
}

/**
 * Request bodies, inline in `components.requestBodies` from the zod input types: a field with a default is
 * optional there (openapi-typescript makes a defaulted field of a schema component required, which is right
 * for responses and wrong for requests). Every body may be left out where the server reads `{}` instead.
 */
function requestBody(schema: z.ZodType, description: string, required: boolean): Json {
  const { root, defs } = toJsonSchema(schema, 'input');
  const [only] = Object.values(defs);
  return { description, required, ...json(only ?? root) };
}

/** Query parameters from a zod object: one parameter per field, required when the schema requires it. */
export function queryParameters(schema: z.ZodType): Json[] {
  const { root } = toJsonSchema(schema, 'input');
  const required = new Set((root.required as string[] | undefined) ?? []);
  return Object.entries(root.properties as Record<string, Json>).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: property,
  }));
}

// ---- errors ------------------------------------------------------------------------------------------------

/** The error envelope narrowed to the codes one response can carry (docs/http-api.md). */
const errorWith = (codes: readonly string[]) => ({
  allOf: [ref('schemas', 'Error'), { type: 'object', properties: { error: { type: 'object', properties: { code: { type: 'string', enum: codes } } } } }],
});

/** A response carrying the error envelope with one of these codes. */
export const errorResponse = (codes: readonly string[], headers?: Json): Json => ({
  description: codes.map((c) => `\`${c}\``).join(', '),
  ...(headers ? { headers } : {}),
  ...json(errorWith(codes)),
});

/** Refusals of the self-service gate (the proxy's checks, before any handler). */
export const GATE_401 = ['missing_api_key', 'invalid_api_key', 'key_expired', 'key_disabled'] as const;
export const GATE_403 = ['public_key_not_allowed', 'origin_not_allowed', 'mtls_required', 'client_certificate_not_allowed', 'tenant_suspended'] as const;

const headers = {
  RetryAfter: { description: 'Seconds to wait before trying again', required: true, schema: { type: 'integer', minimum: 0 } },
  WwwAuthenticate: { description: 'How to authenticate (RFC 9110 §11.6.1)', required: true, schema: { type: 'string' } },
};

const responses = {
  SelfServiceUnauthorized: errorResponse(GATE_401, { 'WWW-Authenticate': ref('headers', 'WwwAuthenticate') }),
  AdminUnauthorized: errorResponse(['missing_api_key', 'invalid_api_key'], { 'WWW-Authenticate': ref('headers', 'WwwAuthenticate') }),
  NotFound: errorResponse(['not_found']),
  RequestTimeout: errorResponse(['request_timeout']),
  PayloadTooLarge: errorResponse(['payload_too_large']),
  RateLimited: errorResponse(['rate_limited', 'too_many_failed_attempts'], { 'Retry-After': ref('headers', 'RetryAfter') }),
  InternalError: errorResponse(['internal_error']),
  StoreUnavailable: errorResponse(['store_unavailable'], { 'Retry-After': ref('headers', 'RetryAfter') }),
};

export interface ErrorsOf {
  /** The operation reads a body (adds 400 validation_error, 408, 413). */
  body?: boolean;
  /** The operation reads query parameters (adds 400 validation_error). */
  query?: boolean;
  /** The operation addresses a tenant or key that may not exist (adds 404). */
  addressed?: boolean;
  /** Codes of 409 Conflict. */
  conflict?: readonly string[];
}

/** Every error a self-service operation can answer; `permission` adds 403 insufficient_permissions. */
export function selfServiceErrors(o: ErrorsOf & { permission: boolean }): Json {
  return {
    400: errorResponse(o.body || o.query ? ['validation_error', 'malformed_request'] : ['malformed_request']),
    401: ref('responses', 'SelfServiceUnauthorized'),
    403: errorResponse(o.permission ? ['insufficient_permissions', ...GATE_403] : GATE_403),
    ...(o.addressed ? { 404: ref('responses', 'NotFound') } : {}),
    ...(o.body ? { 408: ref('responses', 'RequestTimeout') } : {}),
    ...(o.conflict ? { 409: errorResponse(o.conflict) } : {}),
    ...(o.body ? { 413: ref('responses', 'PayloadTooLarge') } : {}),
    429: ref('responses', 'RateLimited'),
    500: ref('responses', 'InternalError'),
    503: ref('responses', 'StoreUnavailable'),
  };
}

/** Every error an admin operation can answer (the admin token has authority over everything: no 403). */
export function adminErrors(o: ErrorsOf): Json {
  return {
    400: errorResponse(o.body || o.query ? ['validation_error', 'malformed_request'] : ['malformed_request']),
    401: ref('responses', 'AdminUnauthorized'),
    // A `read` operator (admin.tokens) calling anything but GET or HEAD.
    403: errorResponse(['insufficient_permissions']),
    ...(o.addressed ? { 404: ref('responses', 'NotFound') } : {}),
    ...(o.conflict ? { 409: errorResponse(o.conflict) } : {}),
    ...(o.body ? { 413: ref('responses', 'PayloadTooLarge') } : {}),
    // An address that sent too many wrong admin or operator tokens (limits.failedAttempts).
    429: errorResponse(['too_many_failed_attempts'], { 'Retry-After': ref('headers', 'RetryAfter') }),
    500: ref('responses', 'InternalError'),
    503: ref('responses', 'StoreUnavailable'),
  };
}

export const security = {
  selfService: [{ apiKey: [] }, { bearerApiKey: [] }],
  admin: [{ adminToken: [] }],
};

export function components(): Json {
  return {
    securitySchemes: {
      apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: "The caller's own API key" },
      bearerApiKey: { type: 'http', scheme: 'bearer', description: "The caller's own API key as `Authorization: Bearer <key>`" },
      adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token (`admin.token`) or a named operator token (`admin.tokens`; role `read`: GET and HEAD only), internal listener only. The console at /console calls the same operations under /console/api/admin/v1 with its session cookie instead (docs/console.md).' },
    },
    schemas: responseSchemas(),
    requestBodies: {
      CreateApiKey: requestBody(s.createKeyBody, "The new key; every field may be left out (then: the caller's permissions, the plan's limits)", false),
      UpdateApiKey: requestBody(s.updateKeyBody, 'The fields to change; permissions can only narrow', false),
      RotateApiKey: requestBody(s.rotateKeyBody, 'How long the old value keeps working', false),
      CreateTenant: requestBody(s.createTenantBody, 'The new tenant', true),
      MintSessionToken: requestBody(s.mintSessionTokenBody, "How to narrow the token; every field may be left out (then: 60 s, the key's scope, one WebSocket session)", false),
      AdminMintSessionToken: requestBody(s.adminMintSessionTokenBody, 'The key to mint with, and how to narrow the token', true),
      UpdateTenant: requestBody(s.updateTenantBody, 'The fields to change', false),
      CreateWebhookEndpoint: requestBody(wh.createEndpointBody, 'The endpoint', true),
      RotateWebhookSecret: requestBody(wh.rotateSecretBody, 'How long the old secret keeps signing too', false),
    },
    parameters: {
      KeyId: { name: 'id', in: 'path', required: true, description: 'Key id (`key_...`)', schema: { type: 'string' } },
      KeyIdOrCurrent: { name: 'id', in: 'path', required: true, description: 'Key id (`key_...`), or `current`: the calling key', schema: { type: 'string' } },
      WebhookEndpointId: { name: 'endpointId', in: 'path', required: true, description: 'Webhook endpoint id (`whe_...`)', schema: { type: 'string' } },
      TenantId: { name: 'tenantId', in: 'path', required: true, description: 'Tenant id (`ten_...`)', schema: { type: 'string' } },
    },
    headers,
    responses,
  };
}
