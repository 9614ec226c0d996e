import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sign } from '../../src/decision/signature.ts';
import { sign as signWebhook } from '../../src/webhooks/deliver.ts';

// Writes test/vectors/signatures.json: signed requests and webhook deliveries, made with keygate's own signers,
// that every verifier of keygate's signatures is tested on (test/unit/vectors/signatures.test.ts for
// `keygate/verify` and `standardwebhooks`, sdk/python/tests for the Python package). Deterministic: fixed
// secrets and times, so running it again changes nothing unless a signer changed.
//
//   node test/vectors/make-signatures.ts

export const VECTORS_FILE = join(import.meta.dirname, 'signatures.json');

const NOW = 1_767_225_600; // 2026-01-01T00:00:00Z: every vector is verified at this time
const SECRET = 'vector-signing-secret-0123456789';
const OTHER_SECRET = 'another-signing-secret-9876543210';
const TENANT = 'ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Y';
const KEY = 'key_01JZ8Q5A1B2C3D4E5F6G7H8J9K';

type Reason = 'missing' | 'malformed' | 'stale' | 'mismatch';

interface IdentityVector {
  name: string;
  secret: string;
  now: number;
  toleranceSeconds?: number;
  /** The request as the backend received it: method, path without the query string. */
  method: string;
  path: string;
  /** What the verifier is configured with: the prefix a proxy between keygate and the backend removed. */
  basePath: string;
  headers: Record<string, string>;
  expect: 'ok' | Reason;
}

function identityHeaders(signature: string | null, over: Partial<{ tenantId: string; keyId: string }> = {}): Record<string, string> {
  return {
    ...(signature === null ? {} : { 'x-keygate-signature': signature }),
    'x-tenant-id': over.tenantId ?? TENANT,
    'x-api-key-id': over.keyId ?? KEY,
    'x-api-key-type': 'private',
    'x-api-key-permissions': 'calls:read,calls:write',
    'x-request-id': 'req_vector',
  };
}

const signed = (path: string, t = NOW, method = 'GET', secret = SECRET) => sign(secret, { method, path, tenantId: TENANT, keyId: KEY }, t);
const base = { secret: SECRET, now: NOW, method: 'GET', basePath: '' };

const identity: IdentityVector[] = [
  { ...base, name: 'valid', path: '/v1/calls/7', headers: identityHeaders(signed('/v1/calls/7')), expect: 'ok' },
  { ...base, name: 'valid: upstream URL with a path, received as forwarded', path: '/api/v1/calls/7', headers: identityHeaders(signed('/api/v1/calls/7')), expect: 'ok' },
  { ...base, name: 'valid: base path removed on the way, configured', path: '/v1/calls/7', basePath: '/api', headers: identityHeaders(signed('/api/v1/calls/7')), expect: 'ok' },
  { ...base, name: 'valid: POST', method: 'POST', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls', NOW, 'POST')), expect: 'ok' },
  { ...base, name: 'valid: method compared upper-cased', method: 'post', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls', NOW, 'POST')), expect: 'ok' },
  { ...base, name: 'valid: signed 300 s before (the tolerance, inclusive)', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls', NOW - 300)), expect: 'ok' },
  { ...base, name: 'valid: signed 300 s ahead (clock skew)', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls', NOW + 300)), expect: 'ok' },
  { ...base, name: 'wrong base path: removed on the way, not configured', path: '/v1/calls/7', headers: identityHeaders(signed('/api/v1/calls/7')), expect: 'mismatch' },
  { ...base, name: 'wrong base path: another prefix configured', path: '/v1/calls/7', basePath: '/other', headers: identityHeaders(signed('/api/v1/calls/7')), expect: 'mismatch' },
  { ...base, name: 'wrong base path: configured but keygate signed without one', path: '/v1/calls/7', basePath: '/api', headers: identityHeaders(signed('/v1/calls/7')), expect: 'mismatch' },
  { ...base, name: 'canonical path: the path is compared as received, not decoded', path: '/v1/%63alls/7', headers: identityHeaders(signed('/v1/calls/7')), expect: 'mismatch' },
  { ...base, name: 'canonical path: trailing slash is another path', path: '/v1/calls/7/', headers: identityHeaders(signed('/v1/calls/7')), expect: 'mismatch' },
  { ...base, name: 'tampered: tenant id', path: '/v1/calls/7', headers: identityHeaders(signed('/v1/calls/7'), { tenantId: 'ten_01JZ8Q4W7R3M2K5N6P8T9V0X1Z' }), expect: 'mismatch' },
  { ...base, name: 'tampered: key id', path: '/v1/calls/7', headers: identityHeaders(signed('/v1/calls/7'), { keyId: 'key_01JZ8Q5A1B2C3D4E5F6G7H8J9L' }), expect: 'mismatch' },
  { ...base, name: 'tampered: path', path: '/v1/calls/8', headers: identityHeaders(signed('/v1/calls/7')), expect: 'mismatch' },
  { ...base, name: 'tampered: method', method: 'DELETE', path: '/v1/calls/7', headers: identityHeaders(signed('/v1/calls/7')), expect: 'mismatch' },
  { ...base, name: 'tampered: timestamp', path: '/v1/calls/7', headers: identityHeaders(signed('/v1/calls/7').replace(`t=${NOW}`, `t=${NOW + 1}`)), expect: 'mismatch' },
  { ...base, name: 'tampered: signed with another secret', path: '/v1/calls/7', headers: identityHeaders(signed('/v1/calls/7', NOW, 'GET', OTHER_SECRET)), expect: 'mismatch' },
  { ...base, name: 'expired: signed 301 s before', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls', NOW - 301)), expect: 'stale' },
  { ...base, name: 'expired: signed 301 s ahead', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls', NOW + 301)), expect: 'stale' },
  { ...base, name: 'expired: a tolerance of 30 s', toleranceSeconds: 30, path: '/v1/calls', headers: identityHeaders(signed('/v1/calls', NOW - 31)), expect: 'stale' },
  { ...base, name: 'unsigned', path: '/v1/calls', headers: identityHeaders(null), expect: 'missing' },
  { ...base, name: 'unsigned: empty header', path: '/v1/calls', headers: identityHeaders(''), expect: 'missing' },
  { ...base, name: 'malformed: upper-case hex', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls').toUpperCase().replace('T=', 't=').replace('V1=', 'v1=')), expect: 'malformed' },
  { ...base, name: 'malformed: no timestamp', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls').replace(/^t=\d+,/, '')), expect: 'malformed' },
  { ...base, name: 'malformed: 13-digit timestamp', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls').replace(/^t=\d+/, 't=1767225600000')), expect: 'malformed' },
  { ...base, name: 'malformed: spaces', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls').replace(',', ', ')), expect: 'malformed' },
  { ...base, name: 'malformed: trailing newline', path: '/v1/calls', headers: identityHeaders(`${signed('/v1/calls')}\n`), expect: 'malformed' },
  { ...base, name: 'malformed: two signatures', path: '/v1/calls', headers: identityHeaders(`${signed('/v1/calls')},${signed('/v1/calls')}`), expect: 'malformed' },
  { ...base, name: 'malformed: non-ASCII digits in the timestamp', path: '/v1/calls', headers: identityHeaders(signed('/v1/calls').replace(/^t=\d/, 't=\u0661')), expect: 'malformed' },
];

interface WebhookVector {
  name: string;
  secret: string;
  now: number;
  headers: Record<string, string>;
  body: string;
  expect: 'ok' | 'invalid';
}

const WH_SECRET = 'whsec_dmVjdG9yLXdlYmhvb2stc2VjcmV0LTAxMjM0NTY3';
const WH_OTHER = 'whsec_YW5vdGhlci13ZWJob29rLXNlY3JldC05ODc2NTQz';

/** A delivery as the worker sends it: body `{type, timestamp, data}`, signed over `id.timestamp.body`. */
function delivery(id: string, type: string, data: Record<string, unknown>, t = NOW, secrets = [WH_SECRET]) {
  const body = JSON.stringify({ type, timestamp: new Date(t * 1000).toISOString(), data });
  return { headers: { 'webhook-id': id, 'webhook-timestamp': String(t), 'webhook-signature': secrets.map((s) => signWebhook(s, id, t, body)).join(' ') }, body };
}

const created = delivery('msg_01JZ8QA0000000000000000001', 'key.created', { tenantId: TENANT, keyId: KEY, actor: 'admin', name: 'voice agent', keyType: 'private', permissions: ['calls:read', 'calls:write'] });
const wh = { secret: WH_SECRET, now: NOW };
const ok = (name: string, d: { headers: Record<string, string>; body: string }): WebhookVector => ({ ...wh, name, ...d, expect: 'ok' });
const bad = (name: string, d: { headers: Record<string, string>; body: string }): WebhookVector => ({ ...wh, name, ...d, expect: 'invalid' });

const webhooks: WebhookVector[] = [
  ok('valid: key.created', created),
  ok('valid: key.updated', delivery('msg_01JZ8QA0000000000000000002', 'key.updated', { tenantId: TENANT, keyId: KEY, actor: KEY, fields: ['name', 'rateLimit'] })),
  ok('valid: key.rotated', delivery('msg_01JZ8QA0000000000000000003', 'key.rotated', { tenantId: TENANT, keyId: KEY, actor: 'admin', gracePeriodSeconds: 3600 })),
  ok('valid: key.revoked', delivery('msg_01JZ8QA0000000000000000004', 'key.revoked', { tenantId: TENANT, keyId: KEY, actor: 'admin' })),
  ok('valid: key.revoked with its tenant', delivery('msg_01JZ8QA0000000000000000005', 'key.revoked', { tenantId: TENANT, keyId: KEY, actor: 'admin', reason: 'tenant_deleted' })),
  ok('valid: key.expiring', delivery('msg_01JZ8QA0000000000000000006', 'key.expiring', { tenantId: TENANT, keyId: KEY, name: null, expiresAt: '2026-01-08T00:00:00.000Z', days: 7 })),
  ok('valid: key.expired', delivery('msg_01JZ8QA0000000000000000007', 'key.expired', { tenantId: TENANT, keyId: KEY, name: 'voice agent', expiresAt: '2025-12-31T23:00:00.000Z' })),
  ok('valid: quota.threshold', delivery('msg_01JZ8QA0000000000000000008', 'quota.threshold', { tenantId: TENANT, keyId: null, quota: 'sessionMinutesPerMonth', threshold: 80, limit: 1000, used: 800, period: '2026-01' })),
  ok('valid: limits.blocked', delivery('msg_01JZ8QA0000000000000000009', 'limits.blocked', { ip: '2001:db8:7:1::/64', failures: 20, windowSeconds: 60, blockSeconds: 300, blockedUntil: '2026-01-01T00:05:00.000Z', suppressed: 0 })),
  ok('valid: webhook.disabled', delivery('msg_01JZ8QA0000000000000000010', 'webhook.disabled', { tenantId: TENANT, endpointId: 'whe_01JZ8QB0000000000000000001', url: 'https://hooks.example.com/keygate', failingSince: '2025-12-31T00:00:00.000Z', disabledAt: '2026-01-01T00:00:00.000Z' })),
  ok('valid: an event type added later', delivery('msg_01JZ8QA0000000000000000011', 'session.opened', { tenantId: TENANT })),
  ok('valid: during a secret rotation (two signatures)', delivery('msg_01JZ8QA0000000000000000012', 'key.revoked', { tenantId: TENANT, keyId: KEY, actor: 'admin' }, NOW, [WH_OTHER, WH_SECRET])),
  ok('valid: sent 300 s before', delivery('msg_01JZ8QA0000000000000000013', 'key.revoked', { tenantId: TENANT, keyId: KEY, actor: 'admin' }, NOW - 300)),
  bad('tampered: body', { headers: created.headers, body: created.body.replace('voice agent', 'voice agenT') }),
  bad('tampered: webhook-id', { headers: { ...created.headers, 'webhook-id': 'msg_01JZ8QA0000000000000000099' }, body: created.body }),
  bad('tampered: webhook-timestamp', { headers: { ...created.headers, 'webhook-timestamp': String(NOW + 1) }, body: created.body }),
  bad('tampered: signed with another secret', delivery('msg_01JZ8QA0000000000000000014', 'key.revoked', { tenantId: TENANT, keyId: KEY, actor: 'admin' }, NOW, [WH_OTHER])),
  bad('expired: sent 301 s before', delivery('msg_01JZ8QA0000000000000000015', 'key.revoked', { tenantId: TENANT, keyId: KEY, actor: 'admin' }, NOW - 301)),
  bad('expired: sent 301 s ahead', delivery('msg_01JZ8QA0000000000000000016', 'key.revoked', { tenantId: TENANT, keyId: KEY, actor: 'admin' }, NOW + 301)),
  bad('unsigned', { headers: { 'webhook-id': created.headers['webhook-id'], 'webhook-timestamp': created.headers['webhook-timestamp'] }, body: created.body }),
  bad('malformed: signature without its version', { headers: { ...created.headers, 'webhook-signature': created.headers['webhook-signature'].slice(3) }, body: created.body }),
];

export function vectors(): string {
  const doc = {
    description:
      'Signed requests (X-Keygate-Signature) and webhook deliveries (Standard Webhooks) made with keygate\'s own signers. ' +
      'Verify each at `now` (unix seconds). Identity: the verifier checks `headers` against `method` and `basePath + path`; `expect` is ok or the failure reason. ' +
      'Webhooks: `expect` is ok or invalid. Written by test/vectors/make-signatures.ts.',
    identity: identity.map(({ name, ...v }) => ({ name, ...v })),
    webhooks: webhooks.map(({ name, ...v }) => ({ name, ...v })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

if (import.meta.main) {
  writeFileSync(VECTORS_FILE, vectors());
  process.stdout.write(`wrote ${VECTORS_FILE}\n`);
}
