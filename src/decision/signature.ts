import { createHmac, timingSafeEqual } from 'node:crypto';

// X-Keygate-Signature (SPEC §5): `t=<unix seconds>,v1=<hex HMAC-SHA256 over "t.method.path.tenantId.keyId">`.
// `path` is the forwarded path without the query string. Shared by the proxy (sign) and `keygate/verify`.

export interface SignedFields {
  method: string;
  path: string;
  tenantId: string;
  keyId: string;
}

const payload = (t: number, f: SignedFields) => `${t}.${f.method.toUpperCase()}.${f.path}.${f.tenantId}.${f.keyId}`;

export function sign(secret: string, fields: SignedFields, nowSeconds = Math.floor(Date.now() / 1000)): string {
  return `t=${nowSeconds},v1=${createHmac('sha256', secret).update(payload(nowSeconds, fields)).digest('hex')}`;
}

export type VerifyFailure = 'missing' | 'malformed' | 'stale' | 'mismatch';

export interface VerifyOptions {
  /** Largest accepted clock difference, in seconds (default 300, as Stripe's webhook signatures). */
  toleranceSeconds?: number;
  nowSeconds?: number;
}

/** Checks a signature header against the request the backend received. */
export function verifySignature(
  secret: string,
  header: string | string[] | undefined,
  fields: SignedFields,
  opts: VerifyOptions = {},
): { ok: true } | { ok: false; reason: VerifyFailure } {
  if (typeof header !== 'string' || header === '') return { ok: false, reason: 'missing' };
  const m = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return { ok: false, reason: 'malformed' };
  const t = Number(m[1]);
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - t) > (opts.toleranceSeconds ?? 300)) return { ok: false, reason: 'stale' };
  const expected = createHmac('sha256', secret).update(payload(t, fields)).digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex')) ? { ok: true } : { ok: false, reason: 'mismatch' };
}
