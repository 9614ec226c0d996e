import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { parse } from 'yaml';
import { DOCS } from './gateways.ts';

// What the door-parity test needs to send one hostile request through every door and see what arrived: a raw
// HTTP exchange (the method, target and header names go out exactly as written: no client library upper-cases a
// method or merges a repeated field), an upstream that records the head of every request and WebSocket upgrade
// it receives, and Envoy's ext_authz filter as docs/gateways/envoy.yaml configures it (no Envoy binary here).

/** A header list as sent: [name, value] pairs, repeats and odd spellings kept. */
export type Pairs = Array<[string, string]>;

export interface RawReply {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: string;
}

/**
 * One request written byte for byte on a fresh connection (from `localAddress`, another loopback address for
 * another client); the reply read until the server closes it.
 */
export function rawExchange(port: number, method: string, target: string, pairs: Pairs, body = '', localAddress?: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
    const chunks: Buffer[] = [];
    const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...pairs.map(([n, v]) => `${n}: ${v}`), 'Connection: close'];
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    socket.on('connect', () => socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // A 101 never ends on its own: the head is all this exchange wants.
      if (Buffer.concat(chunks).toString('latin1').startsWith('HTTP/1.1 101') && Buffer.concat(chunks).includes('\r\n\r\n')) socket.destroy();
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no reply to ${method} ${target}`)));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const head = (end < 0 ? text : text.slice(0, end)).split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const c = line.indexOf(':');
        if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
      }
      let rest = end < 0 ? '' : text.slice(end + 4);
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) rest = rest.replace(/(^|\r\n)[0-9a-f]+\r\n/gi, '');
      resolve({ status, headers, body: rest });
    });
  });
}

/** A WebSocket upgrade request's own fields, for a raw exchange. */
/** A reply read whole off a connection: its status, its head as it came, and the rest. */
export interface BytesReply {
  status: number;
  head: string;
  body: string;
}

/**
 * Exactly `bytes` to `url`'s host and port on a fresh connection (no client library to tidy the request line or
 * the fields: any spelling, HTTP/1.0, several Hosts), the reply read until the other end closes.
 */
export function exchangeBytes(url: string, bytes: string): Promise<BytesReply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(Number(port), hostname, () => s.write(bytes));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), head: text.slice(0, end), body: text.slice(end + 4) });
    });
    s.setTimeout(10_000, () => s.destroy());
  });
}

export const UPGRADE: Pairs = [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']];

export interface Seen {
  method: string;
  url: string;
  /** The head as received: [name, value] pairs. */
  pairs: Pairs;
}

export interface RecordingUpstream {
  port: number;
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** An upstream that answers every request 200 and accepts every WebSocket upgrade, recording each head. */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const seen: Seen[] = [];
  const record = (req: { method?: string; url?: string; rawHeaders: string[] }) => {
    const pairs: Pairs = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    seen.push({ method: req.method ?? '', url: req.url ?? '', pairs });
  };
  const server: Server = createServer((req, res) => {
    record(req);
    req.resume();
    req.on('end', () => res.end('{}'));
  });
  // A request node cannot parse (a lower-case or unknown method) is recorded too, by its request line: that it
  // reached the upstream at all is what a test asks, since another server (Werkzeug) would have run it.
  server.on('clientError', (err: Error & { rawPacket?: Buffer }, socket) => {
    const line = err.rawPacket?.toString('latin1').split('\r\n')[0] ?? '';
    seen.push({ method: line.split(' ')[0] ?? '', url: line.split(' ')[1] ?? '', pairs: [] });
    socket.destroy();
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    record(req);
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('error', () => {}));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const ws of wss.clients) ws.terminate();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---- Envoy's ext_authz HTTP filter, read from docs/gateways/envoy.yaml --------------------------------------

interface Matcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
}
const envoyDoc = parse(readFileSync(join(DOCS, 'envoy.yaml'), 'utf8')) as any;
const hcm = envoyDoc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
const extAuthz = hcm.http_filters.find((f: any) => f.name === 'envoy.filters.http.ext_authz').typed_config;
const matches = (list: Matcher[]) => (name: string) =>
  list.some((m) => (m.exact !== undefined ? m.exact === name : m.prefix !== undefined ? name.startsWith(m.prefix) : m.suffix !== undefined ? name.endsWith(m.suffix) : name.includes(m.contains!)));
const allowedHeader = matches(extAuthz.allowed_headers.patterns);
const toUpstream = matches(extAuthz.http_service.authorization_response.allowed_upstream_headers.patterns);
/** HttpConnectionManager common_http_protocol_options.headers_with_underscores_action (Envoy's default: ALLOW). */
const UNDERSCORES: string = hcm.common_http_protocol_options?.headers_with_underscores_action ?? 'ALLOW';
/** forward_client_cert_details (Envoy's default: SANITIZE, which removes a client's X-Forwarded-Client-Cert). */
const XFCC_DETAILS: string = hcm.forward_client_cert_details ?? 'SANITIZE';

export interface EnvoyResult {
  /** Envoy's own refusal, or keygate's answer to the check when it is not 200. */
  refused: RawReply | null;
  /** The head the upstream receives when allowed. */
  upstream: Pairs | null;
}

/**
 * A client request through Envoy as envoy.yaml configures it: header names lower-cased (Envoy's HTTP/1 codec),
 * underscore names handled as `headers_with_underscores_action` says, a client's X-Forwarded-Client-Cert
 * sanitised, the check sent with the original method and `path_prefix` before the original target, Host,
 * Content-Length and Authorization always and other headers only when `allowed_headers` lists them; a 200
 * answer's `allowed_upstream_headers` set on the upstream request (replacing client copies), then the names in
 * `x-envoy-auth-headers-to-remove` removed.
 */
export async function throughEnvoy(authzPort: number, method: string, target: string, client: Pairs): Promise<EnvoyResult> {
  let pairs: Pairs = client.map(([n, v]) => [n.toLowerCase(), v]);
  if (pairs.some(([n]) => n.includes('_'))) {
    if (UNDERSCORES === 'REJECT_REQUEST') return { refused: { status: 400, headers: {}, body: '' }, upstream: null };
    if (UNDERSCORES === 'DROP_HEADER') pairs = pairs.filter(([n]) => !n.includes('_'));
  }
  if (XFCC_DETAILS === 'SANITIZE') pairs = pairs.filter(([n]) => n !== 'x-forwarded-client-cert');
  const check: Pairs = pairs.filter(([n]) => n === 'authorization' || allowedHeader(n));
  check.push(['x-envoy-auth-partial-body', 'false']);
  const answer = await rawExchange(authzPort, method, extAuthz.http_service.path_prefix + target, check);
  if (answer.status !== 200) return { refused: answer, upstream: null };
  const set = Object.entries(answer.headers).filter(([n]) => toUpstream(n));
  const setNames = new Set(set.map(([n]) => n));
  const remove = new Set((answer.headers['x-envoy-auth-headers-to-remove'] ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
  const upstream: Pairs = pairs.filter(([n]) => !setNames.has(n));
  upstream.push(...set);
  return { refused: null, upstream: upstream.filter(([n]) => !remove.has(n)) };
}
