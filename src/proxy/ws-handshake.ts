import type { IncomingMessage } from 'node:http';
import { isCredentialEntry, TOKEN_SUBPROTOCOL } from '../auth/credential.ts';
import { refuse, type StageRefusal } from '../auth/verify.ts';

// The client's opening handshake (RFC 6455 §4.2.1), checked before any slot is taken or the upstream is
// dialled. `ws` checks the same things, but only inside `handleUpgrade`, which keygate can call only
// once the upstream has accepted; a handshake `ws` would refuse must never get that far. The rules mirror
// `ws`'s (its key pattern, its subprotocol grammar), so a handshake that passes here is one it accepts.

const KEY = /^[+/0-9A-Za-z]{22}==$/; // base64 of 16 bytes
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 9110 §5.6.2
const UPGRADE_TOKEN = /(?:^|,)[ \t]*upgrade[ \t]*(?:,|$)/i;

const malformed = (message: string, headers?: Record<string, string>): StageRefusal => refuse('malformed_request', message, headers);

/** `Sec-WebSocket-Protocol` as a list (empty when absent), or null when it is not a list of distinct tokens. */
export function subprotocolsOf(req: IncomingMessage): string[] | null {
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  const list = header.replace(/^[ \t]+|[ \t]+$/g, '').split(/[ \t]*,[ \t]*/);
  return list.every((p) => TOKEN.test(p)) && new Set(list).size === list.length ? list : null;
}

/** Why this upgrade request is not a valid WebSocket opening handshake, or null when it is. */
export function handshakeProblem(req: IncomingMessage): StageRefusal | null {
  const h = req.headers;
  if (req.method !== 'GET') return malformed('A WebSocket upgrade must be a GET request.');
  if ((h.upgrade ?? '').toLowerCase() !== 'websocket') return malformed('Only WebSocket upgrades are supported.');
  if (!UPGRADE_TOKEN.test(h.connection ?? '')) return malformed('A WebSocket upgrade needs "Connection: Upgrade".');
  if (h['sec-websocket-version'] !== '13') return malformed('A WebSocket upgrade needs "Sec-WebSocket-Version: 13".', { 'Sec-WebSocket-Version': '13' });
  const key = h['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return malformed('A WebSocket upgrade needs a Sec-WebSocket-Key of 16 base64-encoded bytes.');
  if (subprotocolsOf(req) === null) return malformed('Sec-WebSocket-Protocol must list distinct tokens.');
  return null;
}

/** Where the `keygate.token, <token>` pair starts in the offered list, or -1 when it is not offered. */
function tokenPairAt(offered: readonly string[]): number {
  const at = offered.indexOf(TOKEN_SUBPROTOCOL);
  return at >= 0 && at + 1 < offered.length ? at : -1;
}

/**
 * The subprotocols offered to the upstream: the client's, less any `keygate.token, <token>` pair and any other
 * session token offered on its own, and any keygate key (one of `keyPrefixes`: a client that put its key there
 * by mistake) — also when another credential (a key header, `?api_key=`) authenticated the upgrade: the upstream
 * never sees a credential, as an `Authorization: Bearer` holding a keygate key never travels on.
 */
export function forwardedSubprotocols(req: IncomingMessage, keyPrefixes: readonly string[]): string[] {
  const offered = subprotocolsOf(req) ?? [];
  const at = tokenPairAt(offered);
  const rest = at < 0 ? offered : [...offered.slice(0, at), ...offered.slice(at + 2)];
  const credential = (p: string) => isCredentialEntry(p, keyPrefixes);
  return rest.some(credential) ? rest.filter((p) => !credential(p)) : rest;
}

/**
 * The subprotocol answered to the client: the upstream's choice, or `keygate.token` when the client offered the
 * token pair and the upstream chose none (a browser that offered subprotocols fails a handshake answering none).
 */
export const answeredSubprotocol = (upstreamChoice: string, req: IncomingMessage): string =>
  upstreamChoice || (tokenPairAt(subprotocolsOf(req) ?? []) >= 0 ? TOKEN_SUBPROTOCOL : '');
