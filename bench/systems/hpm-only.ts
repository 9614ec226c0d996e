// Measurement aid: http-proxy-middleware 4 on a plain node:http server (no Express), no authentication.
import { Agent, createServer } from 'node:http';
import { createProxyMiddleware } from 'http-proxy-middleware';

const proxy = createProxyMiddleware({ target: process.env.UPSTREAM_URL, agent: new Agent({ keepAlive: true, maxSockets: 256 }), ejectPlugins: true, plugins: [(s) => s.on('error', () => {})] });
createServer((req, res) => void proxy(req, res, () => res.writeHead(502).end())).listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
