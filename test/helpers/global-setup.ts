import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cli } from './keygate.ts';

// Fails the run (never skips) when a dependency of the real-process tests is missing.
export default function setup(): void {
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
  if (!existsSync(cli)) throw new Error(`${cli} is missing; run "npm run build" first (npm test does)`);
}
