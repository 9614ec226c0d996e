import { readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, root } from '../helpers/keygate.ts';
import { run } from '../helpers/tools.ts';

// `npm start` runs `npm run build` first; the build is `tsc -b`, which compiles only when a source is newer
// than its last build (a full compile took 35-48 s on a loaded two-core machine, an up-to-date check 1-2 s).

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const dryRun = () => run(process.execPath, [tsc, '-b', 'tsconfig.build.json', '--dry', '--verbose'], { cwd: root });

describe('npm start', () => {
  it('builds incrementally: nothing to do when no source changed, a rebuild when one did', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toMatch(/^npm run build && /);
    expect(pkg.scripts.build).toMatch(/^tsc -b tsconfig\.build\.json( && |$)/);
    await run(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { cwd: root });
    expect((await dryRun()).stdout).toContain("Project 'tsconfig.build.json' is up to date");
    // A source touched after the build: the next start compiles. (The timestamp is put back afterwards.)
    const source = join(root, 'src', 'index.ts');
    const { atime, mtime } = statSync(source);
    try {
      utimesSync(source, atime, new Date(Date.now() + 60_000));
      expect((await dryRun()).stdout).toMatch(/is out of date because output .* is older than input 'src\/index\.ts'/);
    } finally {
      utimesSync(source, atime, mtime);
    }
  }, 120_000);

  it('leaves the CLI executable, so `npx keygate` runs it however warm npx\'s own cache is', () => {
    // npm links the project's own bin into its npx cache once per project path and makes the target executable
    // only then; a later clean build at the same path (CI re-cloning into one folder) writes cli.js afresh, 0644,
    // and `npx keygate` answered "Permission denied". The build itself sets the bit. (npm test builds first.)
    expect(statSync(cli).mode & 0o111).toBe(0o111);
  });
});
