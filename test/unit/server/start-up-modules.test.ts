import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// A sidecar's footprint: `keygate serve` starts without the management APIs — Express, their zod
// schemas, the OpenAPI document — which load on the first management request (server/management.ts). This walks
// the modules `serve` loads at start (static imports that carry values; `import type` and dynamic `import()`
// are not followed) and checks the management side is not among them.

const src = resolve(import.meta.dirname, '..', '..', '..', 'src');

/** The specifiers a module imports or re-exports for their values. */
function valueImports(file: string): string[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const out: string[] = [];
  for (const node of sf.statements) {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      if (clause?.isTypeOnly) continue;
      const named = clause?.namedBindings;
      const onlyTypes = clause && !clause.name && named && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
      if (!onlyTypes) out.push((node.moduleSpecifier as ts.StringLiteral).text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && !node.isTypeOnly) {
      out.push((node.moduleSpecifier as ts.StringLiteral).text);
    }
  }
  return out;
}

/** Every source file and package reached from `entry` through value imports. */
function reached(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of valueImports(file)) {
      if (spec.startsWith('.')) visit(join(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('what `keygate serve` loads at start', () => {
  const { files, packages } = reached(join(src, 'server', 'main.ts'));
  const rel = (f: string) => f.slice(src.length + 1);

  it('reaches the proxy, the store and the probes (the walk follows the start-up path)', () => {
    for (const f of ['server/app.ts', 'proxy/public-handler.ts', 'proxy/forward.ts', 'store/index.ts', 'ops/probes.ts', 'cache/key-cache.ts']) {
      expect([...files].map(rel)).toContain(f);
    }
    expect(packages).toContain('ioredis');
  });

  it('leaves the OpenTelemetry SDK for a process with tracing on (it is imported only then)', () => {
    expect([...packages].filter((p) => p.startsWith('@opentelemetry/'))).toEqual([]);
    expect([...files].map(rel)).toContain('ops/tracing.ts');
    expect([...files].map(rel)).not.toContain('ops/tracing-sdk.ts');
  });

  it("loads undici's Pool alone (proxy/forward.ts requires its file), not the package's entry point and its whole API", () => {
    expect(packages).not.toContain('undici');
    expect(readFileSync(join(src, 'proxy', 'forward.ts'), 'utf8')).toContain("load('undici/lib/dispatcher/pool.js')");
  });

  it('leaves Express, the management routes, their schemas and the OpenAPI document for the first management request', () => {
    expect(packages).not.toContain('express');
    const management = [...files].map(rel).filter((f) => f.startsWith('api/') || f === 'server/management.ts' || f === 'api/webhook-routes.ts' || f === 'webhooks/schemas.ts');
    expect(management).toEqual([]);
  });
});
