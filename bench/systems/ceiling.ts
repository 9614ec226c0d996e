// The ceiling of a Node proxy built like keygate (issue 18): node:http in, undici's Pool out through its dispatch
// handler interface, the client's raw headers copied as they are, no authentication and no header work. What
// keygate does beyond this is its own cost.
import { createServer } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const target = new URL(process.env.UPSTREAM_URL!);
const pool = new Pool(target.origin, { connections: 256, headersTimeout: 0, bodyTimeout: 0 });

createServer((req, res) => {
  const handler: Dispatcher.DispatchHandler = {
    onConnect() {},
    onHeaders(status, raw, resume) {
      const headers: string[] = [];
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toString('latin1');
        if (name.length === 10 && name.toLowerCase() === 'connection') continue;
        headers.push(name, raw[i + 1]!.toString('latin1'));
      }
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
    headers.push(name, raw[i + 1]!);
  }
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch({ path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, handler);
}).listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));

// Exits normally on SIGTERM, so that a profile (bench/profile.ts, --cpu-prof) is written.
process.on('SIGTERM', () => process.exit(0));
