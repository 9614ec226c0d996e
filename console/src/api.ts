// The console's calls: the admin API under /console/api/admin/v1, authenticated by the session cookie (sent by
// the browser; the page never sees it). A 401 means the session ended: back to sign-in.

export const API = '/console/api/admin/v1';

export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export let onSignedOut: () => void = () => {};
export const setSignedOutHandler = (f: () => void) => {
  onSignedOut = f;
};

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path.startsWith('/console/') ? path : `${API}${path}`, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const json = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith('/console/login')) onSignedOut();
    throw new ApiFailure(res.status, json?.error?.code ?? 'error', json?.error?.message ?? `HTTP ${res.status}`);
  }
  return json as T;
}

export const get = <T>(path: string) => call<T>('GET', path);

export interface Me {
  name: string;
  role: 'read' | 'write';
}
export interface Tenant {
  id: string;
  name: string;
  plan: string;
  maxKeys: number;
  status: 'active' | 'suspended';
  createdAt: string;
  keyCount?: number;
}
export interface Limits {
  default: number | null;
  max: number | null;
}
export interface Plan {
  name: string;
  maxKeys: number;
  requestsPerMinute: Limits;
  requestsPerDay: Limits;
  requestsPerMonth: Limits;
  sessionMinutesPerMonth: Limits;
}
export interface ApiKey {
  id: string;
  tenantId: string;
  name: string | null;
  keyType: 'private' | 'public';
  prefix: string;
  permissions: string[];
  rateLimit: { requestsPerMinute: number | null; requestsPerDay: number | null };
  quota?: { requestsPerMonth: number | null; sessionMinutesPerMonth: number | null };
  maxConcurrentConnections: number | null;
  isActive: boolean;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdBy: string;
}
export interface UsageRow {
  period: string;
  requests: number;
  allowed: number;
  denied: number;
  rateLimited: number;
  sessions: number;
  sessionSeconds: number;
  /** The tenant's refusals by error code (a tenant's rows only). */
  refusals?: Record<string, number>;
}
export interface AuditEntry {
  id: string;
  at: string;
  action: string;
  actor: string;
  keyId: string | null;
  details: Record<string, unknown>;
}
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

export const fmt = {
  n: (v: number | null | undefined) => (v === null || v === undefined ? '—' : v.toLocaleString('en')),
  date: (iso: string | null) => (iso ? iso.replace('T', ' ').slice(0, 19) + ' UTC' : 'never'),
  limit: (v: number | null) => (v === null ? 'none' : v.toLocaleString('en')),
};
