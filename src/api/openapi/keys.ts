import { pageQuery } from '../schemas.ts';
import { adminErrors, json, queryParameters, ref, security, selfServiceErrors } from './components.ts';

// The API-key operations, the same on both APIs (key-routes.ts serves both): self-service addresses the
// caller's tenant and accepts `current` for the calling key; admin addresses any tenant's keys.

type Api = 'self-service' | 'admin';

const created = (description: string) => ({ description, ...json(ref('schemas', 'CreatedApiKey')) });

export function keyPaths(api: Api, base: string, server: object[]) {
  const admin = api === 'admin';
  const id = (name: string) => (admin ? `admin${name[0]!.toUpperCase()}${name.slice(1)}` : name);
  const op = { tags: [api], security: admin ? security.admin : security.selfService };
  const errors = admin ? adminErrors : (o: Parameters<typeof adminErrors>[0]) => selfServiceErrors({ ...o, permission: true });
  const scope = admin ? [ref('parameters', 'TenantId')] : [];
  const keyParams = [...scope, ref('parameters', admin ? 'KeyId' : 'KeyIdOrCurrent')];
  const needs = (permission: string) => (admin ? '' : ` Needs \`${permission}\`.`);
  return {
    [base]: {
      servers: server,
      post: {
        ...op,
        operationId: id('createApiKey'),
        summary: 'Create an API key',
        description: `Permissions must be covered by the caller's; omitted, they are the caller's. A key made by a key counts its requests and session minutes against every monthly quota of its creator chain too (its creator's, that creator's creator's, …), so a child cannot create quota; a key already at the end of a chain of 8 creators with quotas cannot create keys (409 \`key_limit_reached\`).${needs('api-keys:write')}`,
        parameters: scope,
        requestBody: ref('requestBodies', 'CreateApiKey'),
        responses: { 201: created('The key; `key` is shown only here'), ...errors({ body: true, addressed: admin, conflict: ['key_limit_reached'] }) },
      },
      get: {
        ...op,
        operationId: id('listApiKeys'),
        summary: 'List API keys',
        description:
          'Only the keys the caller has authority over: those whose every permission its own permissions cover, and itself (the admin token sees every key). ' +
          'Filtering can leave a page with fewer than `limit` keys while `nextCursor` is not null: follow `nextCursor` until it is null.' +
          needs('api-keys:read'),
        parameters: [...scope, ...queryParameters(pageQuery)],
        responses: { 200: { description: 'A page of keys', ...json(ref('schemas', 'ApiKeyPage')) }, ...errors({ query: true, addressed: admin }) },
      },
    },
    [`${base}/{id}`]: {
      servers: server,
      parameters: keyParams,
      get: {
        ...op,
        operationId: id('getApiKey'),
        summary: 'Get an API key',
        description: `A key wider than the caller answers 403.${needs('api-keys:read')}`,
        responses: { 200: { description: 'The key', ...json(ref('schemas', 'ApiKey')) }, ...errors({ addressed: true }) },
      },
      patch: {
        ...op,
        operationId: id('updateApiKey'),
        summary: 'Update an API key (permissions narrow only)',
        description: `Changing a key that may no longer hold a live WebSocket session closes it.${needs('api-keys:write')}`,
        requestBody: ref('requestBodies', 'UpdateApiKey'),
        responses: { 200: { description: 'The updated key', ...json(ref('schemas', 'ApiKey')) }, ...errors({ body: true, addressed: true }) },
      },
      delete: {
        ...op,
        operationId: id('revokeApiKey'),
        summary: 'Revoke an API key',
        description: `It stops working at once, on every replica.${admin ? '' : ' A key cannot revoke itself (409).'}${needs('api-keys:delete')}`,
        responses: { 204: { description: 'Revoked' }, ...errors({ addressed: true, ...(admin ? {} : { conflict: ['cannot_revoke_current_key'] }) }) },
      },
    },
    [`${base}/{id}/rotate`]: {
      servers: server,
      parameters: keyParams,
      post: {
        ...op,
        operationId: id('rotateApiKey'),
        summary: 'Rotate an API key',
        description: `A new value with the same id and settings; the old one stops at once or after \`gracePeriodSeconds\`, and the session tokens minted before the rotation stop with it.${needs('api-keys:write')}`,
        requestBody: ref('requestBodies', 'RotateApiKey'),
        responses: { 201: created('The new value, shown only here'), ...errors({ body: true, addressed: true }) },
      },
    },
  };
}
