import { deliveriesQuery } from '../../webhooks/schemas.ts';
import { adminErrors, json, queryParameters, ref, security } from './components.ts';

// `/admin/v1/webhooks` (issue 17): the platform's webhook endpoints, their delivery logs and the dead letters.

const op = { tags: ['admin'], security: security.admin };
const endpoint = [ref('parameters', 'WebhookEndpointId')];
const DISABLED = 'Answers 404 `not_found` when webhooks are off (`webhooks.enabled`).';

export function webhookPaths(servers: object[]) {
  return {
    '/admin/v1/webhooks': {
      servers,
      post: {
        ...op,
        operationId: 'adminCreateWebhookEndpoint',
        summary: 'Add a webhook endpoint',
        description: `Events are POSTed signed per the Standard Webhooks specification (\`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`). ${DISABLED}`,
        requestBody: ref('requestBodies', 'CreateWebhookEndpoint'),
        responses: { 201: { description: 'The endpoint and its signing secret; the secret is shown only here', ...json(ref('schemas', 'CreatedWebhookEndpoint')) }, ...adminErrors({ body: true, addressed: true }) },
      },
      get: {
        ...op,
        operationId: 'adminListWebhookEndpoints',
        summary: 'List webhook endpoints',
        description: DISABLED,
        responses: { 200: { description: 'Every endpoint', ...json(ref('schemas', 'WebhookEndpointList')) }, ...adminErrors({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/dead-letters': {
      servers,
      get: {
        ...op,
        operationId: 'adminListWebhookDeadLetters',
        summary: 'Deliveries given up after their retry window, newest first',
        description: DISABLED,
        responses: { 200: { description: 'Dead letters', ...json(ref('schemas', 'WebhookDeadLetterList')) }, ...adminErrors({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/dead-letters/{key}/redeliver': {
      servers,
      parameters: [{ name: 'key', in: 'path', required: true, description: 'The dead letter\'s `key`', schema: { type: 'string' } }],
      post: {
        ...op,
        operationId: 'adminRedeliverWebhook',
        summary: 'Deliver a dead letter again (due now, with a fresh retry window)',
        responses: { 204: { description: 'Queued' }, ...adminErrors({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/{endpointId}': {
      servers,
      parameters: endpoint,
      get: {
        ...op,
        operationId: 'adminGetWebhookEndpoint',
        summary: 'Get a webhook endpoint',
        responses: { 200: { description: 'The endpoint', ...json(ref('schemas', 'WebhookEndpoint')) }, ...adminErrors({ addressed: true }) },
      },
      delete: {
        ...op,
        operationId: 'adminDeleteWebhookEndpoint',
        summary: 'Delete a webhook endpoint (its pending deliveries are dropped)',
        responses: { 204: { description: 'Deleted' }, ...adminErrors({ addressed: true }) },
      },
    },
    '/admin/v1/webhooks/{endpointId}/rotate-secret': {
      servers,
      parameters: endpoint,
      post: {
        ...op,
        operationId: 'adminRotateWebhookSecret',
        summary: 'A new signing secret; the old one keeps signing too for the grace period',
        requestBody: ref('requestBodies', 'RotateWebhookSecret'),
        responses: { 200: { description: 'The endpoint and its new secret, shown only here', ...json(ref('schemas', 'CreatedWebhookEndpoint')) }, ...adminErrors({ body: true, addressed: true }) },
      },
    },
    '/admin/v1/webhooks/{endpointId}/deliveries': {
      servers,
      parameters: endpoint,
      get: {
        ...op,
        operationId: 'adminListWebhookDeliveries',
        summary: "The endpoint's delivery log (every attempt), newest first",
        parameters: queryParameters(deliveriesQuery),
        responses: { 200: { description: 'Attempts', ...json(ref('schemas', 'WebhookDeliveryList')) }, ...adminErrors({ query: true, addressed: true }) },
      },
    },
  };
}
