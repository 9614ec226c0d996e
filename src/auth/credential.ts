import type { IncomingHttpHeaders } from 'node:http';
import { looksLikeToken } from '../keys/session-token.ts';

export type CredentialSource = 'header' | 'bearer' | 'query' | 'subprotocol';

export interface Credential {
  value: string;
  source: CredentialSource;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(authorization: string | undefined): string | null {
  if (!authorization) return null;
  return BEARER.exec(authorization)?.[1] ?? null;
}

/** The subprotocol a browser offers to say that the next one offered is a session token. */
export const TOKEN_SUBPROTOCOL = 'keygate.token';

/**
 * The session token of a WebSocket handshake offering `keygate.token, <token>` as subprotocols (a browser's
 * WebSocket cannot set headers; it can offer subprotocols). Null when the pair is not offered.
 */
export function subprotocolToken(offered: string | undefined): string | null {
  if (offered === undefined || !offered.includes(TOKEN_SUBPROTOCOL)) return null;
  const list = offered.split(',').map((p) => p.trim());
  const at = list.indexOf(TOKEN_SUBPROTOCOL);
  return at >= 0 && at + 1 < list.length && list[at + 1] !== '' ? list[at + 1]! : null;
}

/**
 * Whether the offered subprotocols hold any credential: the `keygate.token, <token>` pair, a session token offered
 * on its own (a second one, or one without the marker), or a keygate key, one starting with any of `keyPrefixes`
 * (a client that put its key there by mistake). None may reach the upstream, as every `?token=` holding a session
 * token is removed from the query, not only the one read. Browsers send the field on upgrades only, but any client
 * can send it on any request, and the upstream must see no credential on either.
 */
export function offersCredential(offered: string | undefined, keyPrefixes: readonly string[]): boolean {
  if (offered === undefined) return false;
  return subprotocolToken(offered) !== null || offered.split(',').some((p) => isCredentialEntry(p.trim(), keyPrefixes));
}

/** One offered subprotocol that is a credential: a session token, or a keygate key (one of `keyPrefixes`). */
export const isCredentialEntry = (entry: string, keyPrefixes: readonly string[]): boolean =>
  looksLikeToken(entry) || keyPrefixes.some((prefix) => entry.startsWith(prefix));

/**
 * `X-API-Key`, then `Authorization: Bearer`, then — on WebSocket upgrades only, where browsers cannot set
 * headers — `?api_key=`, `?token=` (a session token) and the `keygate.token` subprotocol pair.
 */
export function credentialOf(headers: IncomingHttpHeaders, url: string, allowQuery: boolean): Credential | null {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return { value: header.trim(), source: 'header' };
  const bearer = bearerToken(headers.authorization);
  if (bearer) return { value: bearer, source: 'bearer' };
  if (allowQuery) {
    const q = url.indexOf('?');
    if (q >= 0) {
      const params = new URLSearchParams(url.slice(q + 1));
      // `token` is read only when it holds a session token: that is the `token` the request target drops before
      // forwarding (http/target.ts), so a key sent as `?token=` is neither accepted nor passed to the upstream.
      const token = params.get('token');
      const value = params.get('api_key') || (token && looksLikeToken(token) ? token : null);
      if (value) return { value, source: 'query' };
    }
    const token = subprotocolToken(headers['sec-websocket-protocol']);
    if (token) return { value: token, source: 'subprotocol' };
  }
  return null;
}
