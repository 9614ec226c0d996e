import { request } from 'node:http';
import { ADMIN_TOKEN, type KeygateProcess } from './keygate.ts';

export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** One request, its body parsed as JSON when it is JSON. */
export async function call<T>(url: string, init: RequestInit): Promise<Reply<T>> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON; keep the text
  }
  return { status: res.status, headers: res.headers, body: body as T };
}

const jsonInit = (method: string, headers: Record<string, string>, body?: unknown): RequestInit => ({
  method,
  headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});

/** The admin API on the internal listener. */
export const admin = (kg: KeygateProcess, method: string, path: string, body?: unknown) =>
  call<any>(`${kg.opsUrl}/admin/v1${path}`, jsonInit(method, { authorization: `Bearer ${ADMIN_TOKEN}` }, body));

/** The self-service API on the public listener, authenticated by `key`. */
export const self = (kg: KeygateProcess, key: string, method: string, path: string, body?: unknown) =>
  call<any>(`${kg.url}/keygate/v1${path}`, jsonInit(method, { 'x-api-key': key }, body));

/** A proxied request (anything outside /keygate/v1). */
export const proxied = (kg: KeygateProcess, path: string, headers: Record<string, string> = {}, init: RequestInit = {}) =>
  call<any>(`${kg.url}${path}`, { ...init, headers });

/** Creates a tenant through the admin API; returns it and its first key (permissions `*`). */
export async function createTenant(kg: KeygateProcess, body: Record<string, unknown> = { name: 'acme' }) {
  const r = await admin(kg, 'POST', '/tenants', body);
  if (r.status !== 201) throw new Error(`tenant create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return { tenant: r.body.tenant, key: r.body.apiKey.key as string, apiKey: r.body.apiKey };
}

/** node:http with raw header arrays (fetch would merge duplicates before they leave the client). */
export function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string | string[]>; body?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // The path is sent exactly as given (a URL object would normalise `..` and `//` away).
    const { hostname, port, origin } = new URL(url);
    const req = request({ hostname, port, path: url.slice(origin.length) || '/', method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The JSON error envelope, checked whole. */
export function expectError(reply: Reply, status: number, code: string): void {
  const problems: string[] = [];
  if (reply.status !== status) problems.push(`status ${reply.status} != ${status}`);
  if (!reply.headers.get('content-type')?.startsWith('application/json')) problems.push(`content-type ${reply.headers.get('content-type')}`);
  const err = (reply.body as { error?: { code?: string; message?: string; requestId?: string } })?.error;
  if (err?.code !== code) problems.push(`code ${err?.code} != ${code}`);
  if (!err?.message) problems.push('no message');
  if (!err?.requestId) problems.push('no requestId');
  if (status === 401 && !reply.headers.get('www-authenticate')) problems.push('401 without WWW-Authenticate');
  if (problems.length) throw new Error(`bad error reply: ${problems.join(', ')}: ${JSON.stringify(reply.body)}`);
}
