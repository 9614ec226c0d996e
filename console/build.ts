// Builds the operator console (a browser app) into dist/console-ui/, served by keygate at /console
// (src/console/router.ts). Run by `npm run build` after the server's TypeScript. Prints the gzipped size.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, '../dist/console-ui');
mkdirSync(resolve(out, 'assets'), { recursive: true });
await build({
  entryPoints: { app: resolve(here, 'src/main.ts') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  outdir: resolve(out, 'assets'),
  // No source maps in the package: the console's source is in the repository.
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(resolve(here, 'index.html'), resolve(out, 'index.html'));
const size = (f: string) => readFileSync(resolve(out, f)).length;
const gz = (f: string) => gzipSync(readFileSync(resolve(out, f)), { level: 9 }).length;
const files = ['index.html', 'assets/app.js', 'assets/app.css'];
const total = files.reduce((n, f) => n + gz(f), 0);
process.stdout.write(`console: ${files.map((f) => `${f} ${size(f)} B (${gz(f)} B gzipped)`).join(', ')}; ${total} B gzipped in all\n`);
