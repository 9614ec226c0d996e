import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { paths } from './schema.ts';

// `keygate/client`: typed clients of keygate's management APIs, built with openapi-fetch on the types that
// openapi-typescript generates from keygate's OpenAPI document (schema.ts). A platform calls the admin API on
// the internal listener; a tenant (or a platform acting for one) calls the self-service API with an API key.
//
//   import { createAdminClient } from 'keygate/client';
//   const admin = createAdminClient({ baseUrl: 'http://keygate-ops:9090', adminToken });
//   const { data, error } = await admin.POST('/admin/v1/tenants', { body: { name: 'Acme' } });

export type { components, operations, paths } from './schema.ts';

type PathsUnder<Prefix extends string> = { [P in keyof paths as P extends `${Prefix}${string}` ? P : never]: paths[P] };

/** The self-service API: `/keygate/v1` on the public listener. */
export type SelfServicePaths = PathsUnder<'/keygate/v1/'>;
/** The platform admin API: `/admin/v1` on the internal listener. */
export type AdminPaths = PathsUnder<'/admin/v1/'>;

export type SelfServiceClient = Client<SelfServicePaths>;
export type AdminClient = Client<AdminPaths>;

type Options = Omit<ClientOptions, 'baseUrl'> & { baseUrl: string };

/** `X-API-Key` on every request (the caller's own key). */
export function createSelfServiceClient({ apiKey, headers, ...options }: Options & { apiKey: string }): SelfServiceClient {
  return createClient<SelfServicePaths>({ ...options, headers: { ...toRecord(headers), 'X-API-Key': apiKey } });
}

/** `Authorization: Bearer <admin token>` on every request. */
export function createAdminClient({ adminToken, headers, ...options }: Options & { adminToken: string }): AdminClient {
  return createClient<AdminPaths>({ ...options, headers: { ...toRecord(headers), Authorization: `Bearer ${adminToken}` } });
}

function toRecord(headers: ClientOptions['headers']): Record<string, string> {
  if (!headers) return {};
  if (headers instanceof Headers || Array.isArray(headers)) return Object.fromEntries(new Headers(headers));
  return Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, String(v)]));
}
