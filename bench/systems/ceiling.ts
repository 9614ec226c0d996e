// The ceiling of a Node proxy built like keygate: node:http in, undici's Pool out through its dispatch
// handler interface, the client's raw headers copied as they are, no authentication and no header work. What
// keygate does beyond this is its own cost.
//
// CEILING_HEADERS=1: the same, carrying keygate's header bytes and nothing else of its work — the eight fields
// keygate adds to every forwarded request (identity, X-Request-Id, X-Forwarded-*) and the four it adds to every
// response (X-Request-Id, RateLimit-*), with values of the same length, and the client's X-API-Key not
// forwarded. What that costs over the ceiling is what the fields cost node:http and undici, whoever computes them.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const target = new URL(process.env.UPSTREAM_URL!);
const pool = new Pool(target.origin, { connections: 256, headersTimeout: 0, bodyTimeout: 0 });
const withHeaders = process.env.CEILING_HEADERS === '1';

createServer((req, res) => {
  const requestId = withHeaders ? randomUUID() : '';
  const handler: Dispatcher.DispatchHandler = {
    onConnect() {},
    onHeaders(status, raw, resume) {
      const headers: string[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toString('latin1');
        if (name.length === 10 && name.toLowerCase() === 'connection') continue;
        headers.push(name, raw[i + 1]!.toString('latin1'));
      }
      if (withHeaders) headers.push('X-Request-Id', requestId, 'RateLimit-Limit', '1000000000', 'RateLimit-Remaining', '999999999', 'RateLimit-Reset', '42');
      res.writeHead(status, headers);
      res.on('drain', resume);
      return true;
    },
    onData(chunk) {
      return res.write(chunk);
    },
    onComplete() {
      res.end();
    },
    onError() {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  };
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 10 && name.toLowerCase() === 'connection') continue;
    if (withHeaders && name.length === 9 && name.toLowerCase() === 'x-api-key') continue;
    headers.push(name, raw[i + 1]!);
  }
  if (withHeaders) {
    headers.push(
      'x-tenant-id', 'ten_01KB2Y3Z4A5B6C7D8E9F0G1H2J',
      'x-api-key-id', 'key_01KB2Y3Z4A5B6C7D8E9F0G1H2J',
      'x-api-key-type', 'private',
      'x-api-key-permissions', '*',
      'x-request-id', requestId,
      'x-forwarded-for', req.socket.remoteAddress ?? '',
      'x-forwarded-proto', 'http',
      'x-forwarded-host', req.headers.host ?? '',
    );
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch({ path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, handler);
}).listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));

// Exits normally on SIGTERM, so that a profile (bench/profile.ts, --cpu-prof) is written.
process.on('SIGTERM', () => process.exit(0));
