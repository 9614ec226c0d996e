import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../../src/api/openapi.ts';

// Every operation of the OpenAPI document comes with an example: of its success response when it has a body,
// of its request body when it takes one, and of every path parameter (a 204 operation's whole example is its
// request). Redocly's lint (test/e2e/api.openapi-tools.test.ts) checks each example against its schema.

type Json = Record<string, any>;
const doc = buildOpenApi('0.0.0') as Json;
const resolve = (node: Json): Json => (node.$ref ? node.$ref.split('/').slice(1).reduce((n: Json, p: string) => n[p], doc) : node);
const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

describe('OpenAPI examples', () => {
  const operations = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => ({ path, item, method: m, op: item[m] as Json })),
  );

  it('are on every one of the operations', () => {
    expect(operations.length).toBeGreaterThanOrEqual(41);
    const missing: string[] = [];
    for (const { item, op } of operations) {
      const success = Object.entries(op.responses as Record<string, Json>).find(([status]) => status.startsWith('2'))!;
      const media = resolve(success[1]).content?.['application/json'];
      if (media && !media.examples?.example?.value) missing.push(`${op.operationId}: response ${success[0]}`);
      if (op.requestBody && !resolve(op.requestBody).content['application/json'].examples?.example?.value) missing.push(`${op.operationId}: request body`);
      for (const parameter of [...(item.parameters ?? []), ...(op.parameters ?? [])].map(resolve)) {
        if (parameter.in === 'path' && parameter.example === undefined) missing.push(`${op.operationId}: path parameter ${parameter.name}`);
      }
      if (!media && !op.requestBody && ![...(item.parameters ?? []), ...(op.parameters ?? [])].length) missing.push(`${op.operationId}: nothing to show`);
    }
    expect(missing).toEqual([]);
  });
});
