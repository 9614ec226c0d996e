import { z } from 'zod';
import { WEBHOOK_EVENT_TYPES } from './events.ts';

// Request and response schemas of the webhook endpoints API (admin: /admin/v1/webhooks); they validate the
// requests and generate the OpenAPI document (api/openapi/webhooks.ts).

const eventType = z.enum(['*', ...WEBHOOK_EVENT_TYPES]);
const url = z
  .url({ protocol: /^https?$/, normalize: true })
  .max(2048)
  // Credentials in the URL would never be sent (the HTTP client drops them), while the URL is shown in the
  // endpoint's view, audit logs and webhook.disabled events: refused rather than kept and spread.
  .refine((u) => !URL.parse(u)?.username && !URL.parse(u)?.password, { message: 'must not contain credentials (user:password@); a receiver authenticates deliveries by their signature' })
  .describe('Where events are POSTed (http or https, without credentials); redirects are not followed');

export const createEndpointBody = z.strictObject({
  url,
  description: z.string().max(256).nullable().optional(),
  events: z.array(eventType).min(1).max(16).default(['*']).describe('Event types delivered; `*` for every type'),
});

export const rotateSecretBody = z.strictObject({
  gracePeriodSeconds: z.number().int().min(0).max(7 * 86_400).default(86_400).describe('How long the old secret keeps signing too'),
});

export const deliveriesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const endpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.string()),
    secretsActive: z.number().int().describe('Secrets signing each delivery (2 while a rotation is in its grace period)'),
    failingSince: z.string().nullable().describe('When its deliveries started failing (null: the last one succeeded)'),
    disabledAt: z.string().nullable().describe('Disabled after failing for `webhooks.retryForHours`: no deliveries until enabled again'),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'WebhookEndpoint' });

export const createdEndpointSchema = endpointSchema
  .extend({ secret: z.string().describe('`whsec_` + base64: the signing secret, shown only here') })
  .meta({ id: 'CreatedWebhookEndpoint' });

export const endpointListSchema = z.object({ data: z.array(endpointSchema) }).meta({ id: 'WebhookEndpointList' });

export const deliverySchema = z
  .object({
    eventId: z.string().describe('The `webhook-id` sent'),
    eventType: z.string(),
    attempt: z.number().int(),
    status: z.number().int().nullable().describe('HTTP status, or null when no answer came'),
    ok: z.boolean(),
    latencyMs: z.number(),
    error: z.string().nullable().describe('Why no answer came, one of: `blocked: the address is not allowed`, `refused: …`, `unresolved: …`, `unreachable: …`, `timeout: …`, `reset: …`, `tls: …`, `error: the delivery failed` (never an address or what a name resolves to); `endpoint disabled`, `endpoint deleted`'),
    at: z.string(),
    outcome: z.enum(['delivered', 'retry', 'dead']),
    nextAttemptAt: z.string().nullable(),
  })
  .meta({ id: 'WebhookDelivery' });

export const deliveryListSchema = z.object({ data: z.array(deliverySchema) }).meta({ id: 'WebhookDeliveryList' });

export const deadLetterSchema = z
  .object({
    key: z.string().describe('Pass to redeliver'),
    deadAt: z.string().optional().describe('When it was dead-lettered; it is removed `webhooks.deadLetterHours` after'),
    endpointId: z.string(),
    attempts: z.number().int(),
    event: z.object({ id: z.string(), type: z.string(), timestamp: z.string(), data: z.record(z.string(), z.unknown()) }),
  })
  .meta({ id: 'WebhookDeadLetter' });

export const deadLetterListSchema = z.object({ data: z.array(deadLetterSchema) }).meta({ id: 'WebhookDeadLetterList' });

export const webhookResponseSchemas = [endpointSchema, createdEndpointSchema, endpointListSchema, deliveryListSchema, deadLetterListSchema];
