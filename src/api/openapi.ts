import { adminPaths, INTERNAL_SERVER } from './openapi/admin.ts';
import { components } from './openapi/components.ts';
import { withExamples } from './openapi/examples.ts';
import { PUBLIC_SERVER, selfServicePaths } from './openapi/self-service.ts';

// The OpenAPI 3.1 document of both management APIs, generated from the zod schemas that validate requests
// (z.toJSONSchema emits JSON Schema 2020-12, which is OpenAPI 3.1's dialect). It is a contract: every operation
// has an operationId and lists every response a client can get, errors included; the package's typed client
// (`keygate/client`) is generated from it, and test/e2e/api.openapi-contract.test.ts holds the server to it.

export function buildOpenApi(version: string): object {
  return withExamples({
    openapi: '3.1.0',
    info: {
      title: 'keygate management API',
      version,
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      description:
        'Self-service (public listener, authenticated by the caller\'s own API key) and platform admin (internal listener, admin token) APIs. ' +
        'Every error is `{"error": {"code", "message", "requestId"}}`; validation errors add `details: [{path, message}]`.',
    },
    servers: [...PUBLIC_SERVER, ...INTERNAL_SERVER],
    tags: [
      { name: 'self-service', description: "A tenant manages its own keys with one of them (`/keygate/v1`, public listener)" },
      { name: 'admin', description: 'The platform manages every tenant (`/admin/v1`, internal listener, admin token)' },
    ],
    paths: { ...selfServicePaths(), ...adminPaths() },
    components: components(),
  });
}
