import type { IncomingHttpHeaders } from 'node:http';

export type CredentialSource = 'header' | 'bearer' | 'query';

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

/**
 * SPEC §5 step 4: `X-API-Key`, then `Authorization: Bearer`, then `?api_key=` — the query form only for
 * WebSocket upgrades, where browsers cannot set headers.
 */
export function credentialOf(headers: IncomingHttpHeaders, url: string, allowQuery: boolean): Credential | null {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return { value: header.trim(), source: 'header' };
  const bearer = bearerToken(headers.authorization);
  if (bearer) return { value: bearer, source: 'bearer' };
  if (allowQuery) {
    const q = url.indexOf('?');
    if (q >= 0) {
      const value = new URLSearchParams(url.slice(q + 1)).get('api_key');
      if (value) return { value, source: 'query' };
    }
  }
  return null;
}
