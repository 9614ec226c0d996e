// Baseline: a bare Node proxy with no authentication (node:http + keep-alive agent).
import { Agent, createServer, request } from 'node:http';

const target = new URL(process.env.UPSTREAM_URL!);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
createServer((req, res) => {
  const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', () => {
    res.writeHead(502).end();
  });
  req.pipe(up);
}).listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
