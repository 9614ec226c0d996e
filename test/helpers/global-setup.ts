import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { cli } from './keygate.ts';
import { missingTools, SCRATCH_ROOT } from './tools.ts';

// Fails the run (never skips) when a dependency of the real-process tests is missing; afterwards removes the
// scratch directories the tool tests wrote.
export default function setup(): () => void {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('redis-server is not installed; run .ci/run (it installs it) or apt-get install redis-server');
  }
  // The Cluster and Sentinel fixtures: redis-cli creates the cluster, and --cluster-port needs Redis 7.
  let cliVersion: string;
  try {
    cliVersion = execFileSync('redis-cli', ['--version']).toString();
  } catch {
    throw new Error('redis-cli is not installed; run .ci/run (it installs it) or apt-get install redis-tools');
  }
  const major = Number(/(\d+)\./.exec(cliVersion)?.[1] ?? 0);
  if (major < 7) throw new Error(`the Redis Cluster tests need Redis 7 or later; found ${cliVersion.trim()}`);
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('openssl is not installed; run .ci/run (it installs it) or apt-get install openssl');
  }
  const missing = missingTools();
  if (missing.length) throw new Error(`missing test tools: ${missing.join('; ')}`);
  if (!existsSync(cli)) throw new Error(`${cli} is missing; run "npm run build" first (npm test does)`);
  return () => rmSync(SCRATCH_ROOT, { recursive: true, force: true });
}
