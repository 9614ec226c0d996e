import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOpenApi } from '../../src/api/openapi.ts';

// docs/api/: the OpenAPI document as keygate serves it (openapi.json) and its reference rendered by Redocly
// (index.html, with the examples of every operation). `npm run docs:api` writes both; a test fails when either
// is not what this generates from the current document.

const root = join(import.meta.dirname, '..', '..');
export const API_DOCS_DIR = join(root, 'docs', 'api');
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

export const apiDocument = (): string => `${JSON.stringify(buildOpenApi(version), null, 2)}\n`;

/** Writes `openapi.json` and renders `index.html` from it into `dir`. */
export function writeApiDocs(dir: string): void {
  const spec = join(dir, 'openapi.json');
  writeFileSync(spec, apiDocument());
  execFileSync(join(root, 'node_modules', '.bin', 'redocly'), ['build-docs', spec, '-o', join(dir, 'index.html'), '--title', 'keygate HTTP API reference'], {
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    stdio: 'ignore',
  });
}

if (import.meta.main) {
  writeApiDocs(API_DOCS_DIR);
  process.stdout.write(`wrote ${API_DOCS_DIR}/openapi.json and index.html\n`);
}
