import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_DOCS_DIR, apiDocument, writeApiDocs } from '../helpers/api-docs.ts';
import { scratchDir } from '../helpers/tools.ts';

describe('docs/api (the rendered HTTP API reference)', () => {
  it('is what `npm run docs:api` renders from the current OpenAPI document (run it after changing the document)', () => {
    expect(readFileSync(join(API_DOCS_DIR, 'openapi.json'), 'utf8')).toBe(apiDocument());
    const fresh = scratchDir('api-docs');
    writeApiDocs(fresh);
    const html = readFileSync(join(API_DOCS_DIR, 'index.html'), 'utf8');
    expect(html).toBe(readFileSync(join(fresh, 'index.html'), 'utf8'));
    // The reference carries every operation and its examples.
    for (const id of ['adminCreateTenant', 'createApiKey', 'revokeApiKey', 'adminGetOverview']) expect(html).toContain(id);
    expect(html).toContain('kg_sk_7Hq2xWm4Rz8Pk1Ld9Vt3Ns6Yb0Qf3a9KxT');
  }, 60_000);
});
