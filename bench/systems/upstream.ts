// The upstream every system forwards to: a small JSON answer, and a WebSocket echo for the voice mix.
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const body = JSON.stringify({ ok: true, service: 'voice-api' });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
new WebSocketServer({ server, perMessageDeflate: false }).on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
