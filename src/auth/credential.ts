import type { IncomingHttpHeaders } from 'node:http';

export type CredentialSource = 'header' | 'bearer' | 'query';

export interface Credential {
  value: string;
  source: CredentialSource;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * SPEC §5 step 4: `X-API-Key`, then `Authorization: Bearer`, then `?api_key=` — the query form only for
 * WebSocket upgrades, where browsers cannot set headers.
 */
export function credentialOf(headers: IncomingHttpHeaders, url: string, allowQuery: boolean): Credential | null {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return { value: header.trim(), source: 'header' };
  const auth = headers.authorization;
  if (auth) {
    const m = BEARER.exec(auth);
    if (m) return { value: m[1]!, source: 'bearer' };
  }
  if (allowQuery) {
    const q = url.indexOf('?');
    if (q >= 0) {
      const value = new URLSearchParams(url.slice(q + 1)).get('api_key');
      if (value) return { value, source: 'query' };
    }
  }
  return null;
}

/** The request target without `api_key` (so the upstream never sees it). */
export function withoutQueryKey(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  params.delete('api_key');
  const rest = params.toString();
  return rest ? `${url.slice(0, q)}?${rest}` : url.slice(0, q);
}
