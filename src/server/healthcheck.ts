import { isIPv6 } from 'node:net';
import { ConfigError, loadConfig } from '../config/load.ts';

// `keygate healthcheck`: the image's HEALTHCHECK. It reads the effective configuration — defaults,
// the KEYGATE_CONFIG file, then OPS_PORT and the other environment variables — exactly as `serve` does, so a
// port set in the file is the port probed. Docker reads 0 as healthy and 1 as unhealthy (2 is reserved), so
// every failure, an unreadable configuration included, is 1.

const TIMEOUT_MS = 2_500;

/** Where to reach a listener bound to `host`: a wildcard bind is reached on loopback. */
export function probeHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIPv6(host) ? `[${host}]` : host;
}

/** Resolves with the exit code: 0 when the internal listener's /healthz answers 200 within 2.5 s. */
export async function healthcheck(out: (line: string) => void): Promise<0 | 1> {
  let url: string;
  try {
    const { server } = loadConfig();
    url = `http://${probeHost(server.opsHost)}:${server.opsPort}/healthz`;
  } catch (err) {
    out(`keygate healthcheck: ${err instanceof ConfigError ? err.message : (err as Error).message}`);
    return 1;
  }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.ok) return 0;
    out(`keygate healthcheck: ${url} answered ${res.status}`);
  } catch (err) {
    out(`keygate healthcheck: ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  return 1;
}
