import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

// The outside tools some tests drive: the real helm, promtool and Chromium. `.ci/run` installs them (helm with
// `go install` into ~/.cache/keygate, the others from Debian's packages); a test that needs one fails, never
// skips, when it is missing.

export type Tool = 'helm' | 'promtool' | 'chromium' | 'jaeger' | 'prometheus';

/** The Jaeger release .ci/run builds (the tracing test reads traces back from it). */
export const JAEGER_VERSION = 'v1.75.0';

const INSTALL: Record<Tool, string> = {
  helm: 'run .ci/run (it installs helm with `go install` into ~/.cache/keygate)',
  promtool: 'run .ci/run (it installs it) or apt-get install prometheus',
  chromium: 'run .ci/run (it installs it) or apt-get install chromium',
  jaeger: `run .ci/run (it builds Jaeger ${JAEGER_VERSION} with Go into ~/.cache/keygate/jaeger-${JAEGER_VERSION})`,
  prometheus: 'run .ci/run (it installs it: Debian package prometheus) or apt-get install prometheus',
};

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

/** The newest helm that .ci/run cached (helm-vX.Y.Z/helm), for a test run that did not go through .ci/run. */
function cachedHelm(): string | null {
  const cache = join(homedir(), '.cache', 'keygate');
  if (!existsSync(cache)) return null;
  const dirs = readdirSync(cache)
    .filter((d) => /^helm-v\d+\.\d+\.\d+$/.test(d) && existsSync(join(cache, d, 'helm')))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return dirs.length ? join(cache, dirs.at(-1)!, 'helm') : null;
}

/** Where the tool is, or null. `HELM`, `PROMTOOL`, `CHROMIUM`, `JAEGER` and `PROMETHEUS` override. */
export function findTool(tool: Tool): string | null {
  const override = process.env[tool.toUpperCase()];
  if (override) return existsSync(override) ? override : null;
  // helm: the one on PATH (.ci/run puts its pinned build first), else the one .ci/run cached.
  if (tool === 'helm') return onPath('helm') ?? cachedHelm();
  if (tool === 'jaeger') {
    const cached = join(homedir(), '.cache', 'keygate', `jaeger-${JAEGER_VERSION}`, 'jaeger');
    return existsSync(cached) ? cached : null;
  }
  return onPath(tool);
}

/** Where the tool is; throws (so the test fails) with how to install it when it is missing. */
export function tool(name: Tool): string {
  const path = findTool(name);
  if (!path) throw new Error(`${name} is not installed; ${INSTALL[name]}`);
  return path;
}

// Jaeger and Prometheus are not checked up front: only the tracing and exemplar tests need them, and they fail
// on their own (tool() throws) when either is missing.
export const missingTools = (): string[] =>
  (['helm', 'promtool', 'chromium'] as const).filter((t) => findTool(t) === null).map((t) => `${t} (${INSTALL[t]})`);

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion, feeding `input` on stdin; never throws on a non-zero exit. */
export function run(file: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** The tool's own version line, for reports. */
export const versionOf = (file: string, args: string[]): string => execFileSync(file, args, { encoding: 'utf8' }).trim().split('\n')[0]!;

/** Where scratch directories go: inside the project, so TypeScript resolves its node_modules from them. */
export const SCRATCH_ROOT = join(import.meta.dirname, '..', '..', 'node_modules', '.cache', 'keygate-tests');

/** A scratch directory (the global setup's teardown removes them all). */
export function scratchDir(prefix: string): string {
  mkdirSync(SCRATCH_ROOT, { recursive: true });
  return mkdtempSync(join(SCRATCH_ROOT, `${prefix}-`));
}

/** Type-checks `files` with the project's TypeScript, strict; `output` is empty when they compile. */
export async function typecheck(files: string[]): Promise<{ code: number | null; output: string }> {
  const tsc = join(import.meta.dirname, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');
  const args = ['--ignoreConfig', '--noEmit', '--strict', '--target', 'es2023', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--pretty', 'false', ...files];
  const r = await run(process.execPath, [tsc, ...args]);
  return { code: r.code, output: (r.stdout + r.stderr).trim() };
}
