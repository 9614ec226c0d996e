import { deliveriesQuery } from '../../webhooks/schemas.ts';
import { adminErrors, json, queryParameters, ref, security, selfServiceErrors } from './components.ts';

// Webhook endpoints, the same operations on both APIs (webhooks/routes.ts serves both): the platform's
// endpoints (`/admin/v1/webhooks`, every tenant's events) and a tenant's own (`/keygate/v1/webhooks`, its events
// only; `webhooks:write` to change, `webhooks:read` to read).

type Api = 'self-service' | 'admin';
const endpoint = [ref('parameters', 'WebhookEndpointId')];

export function webhookPaths(api: Api, base: string, servers: object[]) {
  const admin = api === 'admin';
  const named = (name: string) => (admin ? `admin${name[0]!.toUpperCase()}${name.slice(1)}` : name);
  const op = { tags: [api], security: admin ? security.admin : security.selfService };
  const errs = admin ? adminErrors : (o: Parameters<typeof adminErrors>[0]) => selfServiceErrors({ ...o, permission: true });
  const needs = (permission: string) => (admin ? '' : ` Needs \`${permission}\`.`);
  const DISABLED = 'Answers 404 `not_found` when webhooks are off (`webhooks.enabled`).';
  const paths = {
    '/admin/v1/webhooks': {
      servers,
      post: {
        ...op,
        operationId: named('createWebhookEndpoint'),
        summary: 'Add a webhook endpoint',
        description: `Events are POSTed signed per the Standard Webhooks specification (\`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`). A tenant has at most \`webhooks.maxEndpointsPerTenant\` (400 \`validation_error\` beyond), and none while it is being deleted (403 \`tenant_suspended\`). ${DISABLED}${needs('webhooks:write')}`,
        requestBody: ref('requestBodies', 'CreateWebhookEndpoint'),
        responses: { 201: { description: 'The endpoint and its signing secret; the secret is shown only here', ...json(ref('schemas', 'CreatedWebhookEndpoint')) }, ...errs({ body: true, addressed: true }) },
      },
      get: {
        ...op,
        operationId: named('listWebhookEndpoints'),
        summary: 'List webhook endpoints',
        description: `${DISABLED}${needs('webhooks:read')}`,
        responses: { 200: { description: 'Every endpoint', ...json(ref('schemas', 'WebhookEndpointList')) }, ...errs({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/dead-letters': {
      servers,
      get: {
        ...op,
        operationId: named('listWebhookDeadLetters'),
        summary: 'Deliveries given up after their retry window, newest first',
        description: `The owner's own (a tenant's, or each of the platform's endpoints'), at most \`webhooks.maxDeadLettersPerTenant\` and \`maxDeadLettersPerEndpoint\` (the oldest removed to make room), each kept \`webhooks.deadLetterHours\`. ${DISABLED}${needs('webhooks:read')}`,
        responses: { 200: { description: 'Dead letters', ...json(ref('schemas', 'WebhookDeadLetterList')) }, ...errs({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/dead-letters/{key}/redeliver': {
      servers,
      parameters: [{ name: 'key', in: 'path', required: true, description: 'The dead letter\'s `key`', schema: { type: 'string' } }],
      post: {
        ...op,
        operationId: named('redeliverWebhook'),
        summary: 'Deliver a dead letter again (due now, with a fresh retry window)',
        description: `429 \`rate_limited\` (Retry-After) while its endpoint or owner has its most pending deliveries (\`webhooks.maxPendingJobsPerEndpoint\`, \`maxPendingJobsPerTenant\`).${needs('webhooks:write')}`,
        responses: { 204: { description: 'Queued' }, ...errs({ addressed: true }), 429: ref('responses', 'RateLimited') },
      },
    },
    '/admin/v1/webhooks/{endpointId}': {
      servers,
      parameters: endpoint,
      get: {
        ...op,
        operationId: named('getWebhookEndpoint'),
        summary: 'Get a webhook endpoint',
        responses: { 200: { description: 'The endpoint', ...json(ref('schemas', 'WebhookEndpoint')) }, ...errs({ addressed: true }) },
      },
      delete: {
        ...op,
        operationId: named('deleteWebhookEndpoint'),
        summary: 'Delete a webhook endpoint (its pending deliveries are dropped)',
        responses: { 204: { description: 'Deleted' }, ...errs({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/{endpointId}/enable': {
      servers,
      parameters: endpoint,
      post: {
        ...op,
        operationId: named('enableWebhookEndpoint'),
        summary: 'Deliver to an endpoint again after it was disabled for failing a day',
        description: `What was dead-lettered meanwhile can be redelivered.${needs('webhooks:write')}`,
        responses: { 200: { description: 'The endpoint', ...json(ref('schemas', 'WebhookEndpoint')) }, ...errs({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/{endpointId}/rotate-secret': {
      servers,
      parameters: endpoint,
      post: {
        ...op,
        operationId: named('rotateWebhookSecret'),
        summary: 'A new signing secret; the old one keeps signing too for the grace period',
        requestBody: ref('requestBodies', 'RotateWebhookSecret'),
        responses: { 200: { description: 'The endpoint and its new secret, shown only here', ...json(ref('schemas', 'CreatedWebhookEndpoint')) }, ...errs({ body: true, addressed: true }) },
      },
    },
    '/admin/v1/webhooks/{endpointId}/deliveries': {
      servers,
      parameters: endpoint,
      get: {
        ...op,
        operationId: named('listWebhookDeliveries'),
        summary: "The endpoint's delivery log (every attempt), newest first",
        parameters: queryParameters(deliveriesQuery),
        responses: { 200: { description: 'Attempts', ...json(ref('schemas', 'WebhookDeliveryList')) }, ...errs({ query: true, addressed: true }) },
      },
    },
  };
  // Rebased from the admin paths written above onto `base`.
  return Object.fromEntries(Object.entries(paths).map(([path, item]) => [path.replace('/admin/v1/webhooks', base), item]));
}
