import { createAdminClient, type AdminClient } from '../client/index.ts';
import { CliError, EXIT, type Output } from './cli-output.ts';
import { renderCreatedKey, renderCreatedTenant, renderKey, renderKeys, renderRevoked, renderTenant, renderTenants } from './cli-render.ts';

// The CLI's management commands, sent to a running keygate's admin API (the internal listener) with the typed
// client — the same rules, the same store and the same audit log as any other admin call, on whichever store
// that keygate runs (embedded or Redis).

/** A slow or wedged keygate answers within this, or the command fails naming the address. */
const TIMEOUT_MS = 10_000;

export type Flags = Record<string, string | boolean | undefined>;

export interface Target {
  url: string;
  token: string;
}

/** `--url`, else `KEYGATE_URL`, else the internal listener on this machine (`OPS_PORT` or 9090). */
export function targetOf(flags: Flags, env: Record<string, string | undefined> = process.env): Target {
  const raw = (typeof flags.url === 'string' && flags.url) || env.KEYGATE_URL || `http://127.0.0.1:${env.OPS_PORT || 9090}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(EXIT.usage, `--url / KEYGATE_URL: not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(EXIT.usage, `--url / KEYGATE_URL: must be http:// or https://, got ${raw}`);
  const token = env.KEYGATE_ADMIN_TOKEN ?? '';
  if (!token) {
    throw new CliError(EXIT.noPermission, `KEYGATE_ADMIN_TOKEN is not set: export the admin token of the keygate at ${url.origin} (keygate serve prints a generated one when none is configured)`);
  }
  return { url: url.origin + url.pathname.replace(/\/+$/, ''), token };
}

function need(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v === '') throw new CliError(EXIT.usage, `--${name} is required`);
  return v;
}

function integer(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new CliError(EXIT.usage, `--${name} must be a whole number, got ${String(v)}`);
  return Number(v);
}

/** What the error's `cause` says (ECONNREFUSED, ENOTFOUND, a TLS failure), else the error itself. */
function causeOf(err: unknown): string {
  const e = err as Error & { cause?: Error & { code?: string } };
  if (e?.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
  const c = e?.cause;
  if (c) return c.code && !c.message.includes(c.code) ? `${c.code}: ${c.message}` : c.message;
  return e?.message ?? String(err);
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/**
 * One admin call: transport failures name the address and cause (69); keygate's error envelope becomes its
 * code and message (77 for the token, 1 otherwise); anything else that is not a success is not keygate (69).
 */
async function call<T>(target: Target, what: string, send: () => Promise<Answer<T>>): Promise<T> {
  let answer: Answer<T>;
  try {
    answer = await send();
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(EXIT.unavailable, `cannot reach keygate at ${target.url} (${what}): ${causeOf(err)}`);
  }
  const { response, error } = answer;
  if (response.ok) return answer.data as T;
  const envelope = (error as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  if (typeof envelope?.code === 'string') {
    const code = envelope.code;
    const exit = code === 'missing_api_key' || code === 'invalid_api_key' ? EXIT.noPermission : EXIT.refused;
    const hint = exit === EXIT.noPermission ? ` (check KEYGATE_ADMIN_TOKEN, and that ${target.url} is keygate's internal listener)` : '';
    throw new CliError(exit, `${target.url} refused ${what}: ${code}: ${String(envelope.message)}${hint}`, code);
  }
  throw new CliError(EXIT.unavailable, `${target.url} answered ${what} with HTTP ${response.status}, not a keygate admin API (is --url the internal listener?)`);
}

function clientFor(target: Target): AdminClient {
  return createAdminClient({
    baseUrl: target.url,
    adminToken: target.token,
    fetch: (req: Request) => fetch(req, { signal: AbortSignal.timeout(TIMEOUT_MS) }),
  });
}

type Command = (api: AdminClient, target: Target, flags: Flags) => Promise<Output>;

/** Every page, following `nextCursor` until it is null. */
async function allPages<T>(fetchPage: (cursor: string | undefined) => Promise<{ data: T[]; nextCursor: string | null }>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    out.push(...page.data);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}

const tenantPath = (flags: Flags, flag = 'id') => ({ path: { tenantId: need(flags, flag) } });
const keyPath = (flags: Flags) => ({ path: { tenantId: need(flags, 'tenant'), id: need(flags, 'id') } });

/** The options of `keys create`, checked here only for shape; keygate validates the values. */
function createKeyBody(flags: Flags) {
  const type = flags.type;
  if (type !== undefined && type !== 'private' && type !== 'public') throw new CliError(EXIT.usage, `--type must be private or public, got ${String(type)}`);
  const keyType: 'private' | 'public' | undefined = type;
  const days = integer(flags, 'expires-in-days');
  return {
    ...(typeof flags.name === 'string' ? { name: flags.name } : {}),
    ...(keyType ? { keyType } : {}),
    ...(typeof flags.permissions === 'string' ? { permissions: flags.permissions.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(days === undefined ? {} : { expiresInDays: days }),
  };
}

/** The options of `tokens mint`; keygate validates the values (and that the token is no wider than the key). */
function mintTokenBody(flags: Flags) {
  const ttl = integer(flags, 'ttl');
  const sessions = integer(flags, 'max-sessions');
  const uses = integer(flags, 'max-uses');
  return {
    keyId: need(flags, 'key'),
    ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
    ...(typeof flags.permissions === 'string' ? { permissions: flags.permissions.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(typeof flags.assistant === 'string' ? { assistantId: flags.assistant } : {}),
    ...(sessions === undefined ? {} : { maxSessions: sessions }),
    ...(uses === undefined ? {} : { maxUses: uses }),
  };
}

const commands: Record<string, Command> = {
  'tenants create': async (api, t, f) =>
    renderCreatedTenant(await call(t, 'tenants create', () => api.POST('/admin/v1/tenants', { body: { name: need(f, 'name'), ...(typeof f.plan === 'string' ? { plan: f.plan } : {}) } }))),
  'tenants list': async (api, t) =>
    renderTenants(await allPages((cursor) => call(t, 'tenants list', () => api.GET('/admin/v1/tenants', { params: { query: { limit: 100, ...(cursor ? { cursor } : {}) } } })))),
  'tenants get': async (api, t, f) => renderTenant(await call(t, 'tenants get', () => api.GET('/admin/v1/tenants/{tenantId}', { params: tenantPath(f) }))),
  'tenants suspend': async (api, t, f) =>
    renderTenant(await call(t, 'tenants suspend', () => api.PATCH('/admin/v1/tenants/{tenantId}', { params: tenantPath(f), body: { status: 'suspended' } }))),
  'tenants activate': async (api, t, f) =>
    renderTenant(await call(t, 'tenants activate', () => api.PATCH('/admin/v1/tenants/{tenantId}', { params: tenantPath(f), body: { status: 'active' } }))),
  'tenants delete': async (api, t, f) => {
    const id = need(f, 'id');
    await call(t, 'tenants delete', () => api.DELETE('/admin/v1/tenants/{tenantId}', { params: { path: { tenantId: id } } }));
    return { json: { id, deleted: true }, human: `deleted ${id} (every key revoked)` };
  },
  'keys create': async (api, t, f) =>
    renderCreatedKey(await call(t, 'keys create', () => api.POST('/admin/v1/tenants/{tenantId}/api-keys', { params: tenantPath(f, 'tenant'), body: createKeyBody(f) }))),
  'tokens mint': async (api, t, f) => {
    const minted = await call(t, 'tokens mint', () => api.POST('/admin/v1/tenants/{tenantId}/session-tokens', { params: tenantPath(f, 'tenant'), body: mintTokenBody(f) }));
    return { json: minted, human: `${minted.token}\n(session token ${minted.id} of ${minted.keyId}, expires ${minted.expiresAt})` };
  },
  'keys list': async (api, t, f) => {
    const tenantId = need(f, 'tenant');
    return renderKeys(
      await allPages((cursor) =>
        call(t, 'keys list', () => api.GET('/admin/v1/tenants/{tenantId}/api-keys', { params: { path: { tenantId }, query: { limit: 100, ...(cursor ? { cursor } : {}) } } })),
      ),
    );
  },
  'keys get': async (api, t, f) => renderKey(await call(t, 'keys get', () => api.GET('/admin/v1/tenants/{tenantId}/api-keys/{id}', { params: keyPath(f) }))),
  'keys revoke': async (api, t, f) => {
    const params = keyPath(f);
    await call(t, 'keys revoke', () => api.DELETE('/admin/v1/tenants/{tenantId}/api-keys/{id}', { params }));
    return renderRevoked(params.path.tenantId, params.path.id);
  },
  'keys rotate': async (api, t, f) => {
    const grace = integer(f, 'grace-seconds');
    return renderCreatedKey(
      await call(t, 'keys rotate', () =>
        api.POST('/admin/v1/tenants/{tenantId}/api-keys/{id}/rotate', { params: keyPath(f), body: grace === undefined ? {} : { gracePeriodSeconds: grace } }),
      ),
    );
  },
  overview: async (api, t) => {
    const o = await call(t, 'overview', () => api.GET('/admin/v1/overview'));
    const human = Object.entries(o).map(([k, v]) => `${k.padEnd(20)}  ${String(v)}`).join('\n');
    return { json: o, human };
  },
};

export const adminCommands = Object.keys(commands);

/** Runs `name` against the admin API; null when there is no such command. */
export async function runAdminCommand(name: string, flags: Flags): Promise<Output | null> {
  const command = commands[name];
  if (!command) return null;
  const target = targetOf(flags);
  return command(clientFor(target), target, flags);
}
