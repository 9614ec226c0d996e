import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
}

export interface Upstream {
  url: string;
  port: number;
  server: Server;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void;

/** Echoes what it received as JSON, unless a handler takes over. Listens on an ephemeral port. */
export async function startUpstream(handler?: UpstreamHandler): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const record: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0 };
    seen.push(record);
    if (handler) return handler(req, res, record);
    req.on('data', (c: Buffer) => (record.bodyBytes += c.length));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: record.method, url: record.url, headers: record.headers, bodyBytes: record.bodyBytes }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * The echo upstream, which also accepts WebSocket upgrades (and closes each at once, 1000) and keeps each upgrade
 * request's headers in `upgrades`: what keygate's dial sent.
 */
export async function startUpgradeUpstream(): Promise<Upstream & { upgrades: IncomingHttpHeaders[] }> {
  const { WebSocketServer } = await import('ws');
  const upstream = await startUpstream();
  const upgrades: IncomingHttpHeaders[] = [];
  const wss = new WebSocketServer({ noServer: true });
  upstream.server.on('upgrade', (req, socket, head) => {
    upgrades.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => ws.close(1000));
  });
  return Object.assign(upstream, { upgrades });
}
