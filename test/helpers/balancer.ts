import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

// A tiny round-robin load balancer for rolling-restart tests: it polls each backend's readiness URL and sends a
// request to the next ready backend, as a cloud load balancer or a Kubernetes Service does. It never retries:
// a request its backend fails is answered 502 here, so a test counts every request a restart loses.

export interface Backend {
  /** Where requests go (the public listener). */
  url: string;
  /** Polled for 200 (the internal listener's /readyz). */
  readyUrl: string;
}

export interface Balancer {
  url: string;
  add(backend: Backend): void;
  remove(url: string): void;
  /** Resolves once `url` has been seen ready. */
  waitReady(url: string): Promise<void>;
  close(): Promise<void>;
}

interface Entry {
  backend: Backend;
  ready: boolean;
  failures: number;
}

const UNHEALTHY_AFTER = 3;

export async function startBalancer(initial: Backend[], pollMs = 100): Promise<Balancer> {
  const backends = new Map<string, Entry>(initial.map((b) => [b.url, { backend: b, ready: false, failures: 0 }]));
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let next = 0;

  const poll = async () => {
    await Promise.all(
      [...backends.values()].map(async (entry) => {
        // As a cloud balancer's health check: an answer decides at once (200 in, anything else out); a check
        // that fails to get one (timeout, refused) takes the backend out only after UNHEALTHY_AFTER in a row, so a
        // slow poll on a loaded machine does not empty the pool.
        try {
          const res = await fetch(entry.backend.readyUrl, { signal: AbortSignal.timeout(2_000) });
          await res.arrayBuffer();
          entry.ready = res.status === 200;
          entry.failures = 0;
        } catch {
          if (++entry.failures >= UNHEALTHY_AFTER) entry.ready = false;
        }
      }),
    );
  };
  let polling = true;
  const loop = (async () => {
    while (polling) {
      await poll();
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();

  const server: Server = createServer((req, res) => {
    const ready = [...backends.values()].filter((e) => e.ready);
    if (ready.length === 0) {
      res.writeHead(503).end('no ready backend');
      return;
    }
    const target = new URL(req.url ?? '/', ready[next++ % ready.length]!.backend.url);
    const upstream = request(target, { method: req.method, headers: req.headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502).end(`backend ${target.origin} failed: ${err.message}`);
      else res.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    add: (b) => backends.set(b.url, { backend: b, ready: false, failures: 0 }),
    remove: (url) => backends.delete(url),
    async waitReady(url) {
      while (!backends.get(url)?.ready) await new Promise((r) => setTimeout(r, pollMs));
    },
    async close() {
      polling = false;
      await loop;
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
