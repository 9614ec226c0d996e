import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// A sidecar's footprint: `keygate serve` starts without the management APIs — Express, their zod
// schemas, the OpenAPI document — which load on the first management request (server/management.ts), and
// without what only other commands, tracing or whole library APIs would bring. This walks the modules `serve`
// loads at start (static imports that carry values; `import type` and dynamic `import()` are not followed) and
// checks those are not among them. test/e2e/start-up.idle-footprint looks at a running keygate instead.

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

/** Every source file, package and built-in module reached from `entries` through value imports. */
function reached(...entries: string[]): { files: Set<string>; packages: Set<string>; builtinsBy: Map<string, string[]> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  /** Built-in module → the files that import a value from it. */
  const builtinsBy = new Map<string, string[]>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of valueImports(file)) {
      if (spec.startsWith('.')) visit(join(dirname(file), spec));
      else if (spec.startsWith('node:')) builtinsBy.set(spec, [...(builtinsBy.get(spec) ?? []), file.slice(src.length + 1)]);
      else packages.add(spec);
    }
  };
  for (const entry of entries) visit(entry);
  return { files, packages, builtinsBy };
}

describe('what `keygate serve` loads at start', () => {
  // The command line's own module, then what `serve` imports: cli-main.ts imports main.ts when the command is
  // serve, and serve imports app.ts while its configuration is checked.
  const { files, packages, builtinsBy } = reached(...['cli-main.ts', 'main.ts', 'app.ts'].map((f) => join(src, 'server', f)));
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

  it('leaves zod, yaml and the configuration schema to the process that checks the configuration (server/serve-config.ts)', () => {
    expect([...packages].filter((p) => p === 'zod' || p === 'yaml')).toEqual([]);
    expect([...files].map(rel).filter((f) => f === 'config/load.ts' || f === 'config/schema.ts' || f === 'auth/policy-file.ts' || f === 'server/config-check.ts')).toEqual([]);
    // …which does load them: the walk from the check process's own module reaches them.
    const checker = reached(join(src, 'server', 'config-checker.ts'));
    expect([...checker.packages].filter((p) => p === 'zod' || p === 'yaml').sort()).toEqual(['yaml', 'zod']);
  });

  it("takes node:http's values from its module object (http/node-http.ts), never by an ES import, which would load Node's fetch", () => {
    expect(builtinsBy.get('node:http') ?? []).toEqual([]);
    expect(readFileSync(join(src, 'http', 'node-http.ts'), 'utf8')).toContain("process.getBuiltinModule('node:http')");
  });

  it("loads rate-limiter-flexible's and prom-client's classes from their own files, not the packages' entry points", () => {
    expect([...packages].filter((p) => p === 'rate-limiter-flexible' || p === 'prom-client')).toEqual([]);
    expect(readFileSync(join(src, 'limits', 'limiter-classes.ts'), 'utf8')).toContain("load('rate-limiter-flexible/lib/RateLimiterRedis.js')");
    expect(readFileSync(join(src, 'ops', 'prom-client.ts'), 'utf8')).toContain("load('prom-client/lib/registry.js')");
  });

  it("leaves the admin commands' client and the healthcheck to their commands", () => {
    expect(packages).not.toContain('openapi-fetch');
    expect([...files].map(rel).filter((f) => f.startsWith('client/') || f === 'server/cli-admin.ts' || f === 'server/healthcheck.ts')).toEqual([]);
  });

  it('leaves Express, the management routes, their schemas and the OpenAPI document for the first management request', () => {
    expect(packages).not.toContain('express');
    const management = [...files].map(rel).filter((f) => f.startsWith('api/') || f === 'server/management.ts' || f === 'api/webhook-routes.ts' || f === 'webhooks/schemas.ts');
    expect(management).toEqual([]);
  });
});
