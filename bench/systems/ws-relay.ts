// Baseline for the voice relay: a bare `ws` relay in Node, no authentication, no metering. Each accepted
// session dials the upstream on the same path and passes every message both ways as it comes — the ceiling of
// a Node relay built on `ws`, as keygate's is. Messages from the client that arrive before the upstream's
// handshake completes are held until it does (a real client may talk at once).
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';

const target = process.env.UPSTREAM_URL!.replace(/^http/, 'ws');
const server = createServer((_req, res) => res.writeHead(426).end());
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (client, req) => {
  const upstream = new WebSocket(target + (req.url ?? '/'), { perMessageDeflate: false });
  const early: Array<[Buffer, boolean]> = [];
  client.on('message', (data: Buffer, binary) => (upstream.readyState === WebSocket.OPEN ? upstream.send(data, { binary }) : early.push([data, binary])));
  upstream.on('open', () => {
    for (const [data, binary] of early.splice(0)) upstream.send(data, { binary });
  });
  upstream.on('message', (data: Buffer, binary) => client.send(data, { binary }));
  const close = () => (client.terminate(), upstream.terminate());
  client.on('close', close);
  upstream.on('close', close);
  client.on('error', close);
  upstream.on('error', close);
});
// A clean exit on SIGTERM, so that --cpu-prof (VOICE_PROFILE=1) writes its profile.
process.on('SIGTERM', () => process.exit(0));
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
