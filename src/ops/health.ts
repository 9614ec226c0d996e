import { connect } from 'node:net';

export type Phase = 'starting' | 'ready' | 'stopping';

interface Check {
  status: 'up' | 'down';
  latencyMs: number | null;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), ms).unref();
    work.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e: unknown) => (clearTimeout(timer), reject(e as Error)),
    );
  });
}

/** Opens (and closes) a TCP connection to the upstream: cheap, and it never touches the application. */
function tcpLatency(url: URL, timeoutMs: number): Promise<number> {
  const started = performance.now();
  return withTimeout(
    new Promise<number>((resolve, reject) => {
      const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) });
      socket.once('connect', () => {
        socket.destroy();
        resolve(performance.now() - started);
      });
      socket.once('error', reject);
    }),
    timeoutMs,
  );
}

export interface ReadinessDeps {
  /**
   * Starts one round trip to the store and resolves to its latency in ms; null until the store is opened
   * (keygate is then still starting). A probe function, so health knows no store type (ops sits above all).
   */
  storePing: () => Promise<number> | null;
  upstreamUrl: string;
  requireStore: boolean;
  version: string;
  onStoreStatus?: (up: boolean) => void;
}

/**
 * `/readyz`: 503 while starting and from the first moment of shutdown; a store outage is reported as
 * `degraded` and stays 200 unless `readiness.requireStore` (a Redis blip should not empty the Service).
 */
export function createReadiness(deps: ReadinessDeps) {
  let phase: Phase = 'starting';
  const startedAt = Date.now();
  const upstream = new URL(deps.upstreamUrl);

  async function check(probe: () => Promise<number>): Promise<Check> {
    try {
      return { status: 'up', latencyMs: round(await withTimeout(probe(), 1_000)) };
    } catch {
      return { status: 'down', latencyMs: null };
    }
  }

  /** The store's check alone: what keygate_store_up reports at every scrape. */
  async function storeCheck(): Promise<Check> {
    const ping = deps.storePing();
    if (ping === null) return { status: 'down', latencyMs: null };
    return check(() => ping);
  }

  return {
    async storeUp(): Promise<boolean> {
      return (await storeCheck()).status === 'up';
    },
    get phase() {
      return phase;
    },
    set(next: Phase) {
      phase = next;
    },
    async report(): Promise<{ httpStatus: number; body: object }> {
      const [redis, up] = await Promise.all([storeCheck(), check(() => tcpLatency(upstream, 1_000))]);
      deps.onStoreStatus?.(redis.status === 'up');
      const storeDown = redis.status === 'down';
      const status = phase !== 'ready' ? phase : storeDown || up.status === 'down' ? 'degraded' : 'ready';
      const ok = phase === 'ready' && !(storeDown && deps.requireStore);
      return {
        httpStatus: ok ? 200 : 503,
        body: { status, checks: { redis: redis, upstream: up }, version: deps.version, uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000) },
      };
    },
  };
}

export type Readiness = ReturnType<typeof createReadiness>;
