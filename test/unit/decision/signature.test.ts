import { describe, expect, it } from 'vitest';
import { sign } from '../../../src/decision/signature.ts';
import { verifySignature } from '../../../src/verify.ts';

const secret = 'a-signing-secret-of-some-length';
const fields = { method: 'POST', path: '/v1/calls', tenantId: 'ten_1', keyId: 'key_1' };

describe('X-Keygate-Signature', () => {
  it('verifies what the proxy signed', () => {
    expect(verifySignature(secret, sign(secret, fields), fields)).toEqual({ ok: true });
  });

  it('fails when any signed field, the secret or the timestamp changes', () => {
    const header = sign(secret, fields, 1_000_000);
    const at = { nowSeconds: 1_000_010 };
    expect(verifySignature(secret, header, fields, at).ok).toBe(true);
    for (const change of [{ method: 'GET' }, { path: '/v1/other' }, { tenantId: 'ten_2' }, { keyId: 'key_2' }]) {
      expect(verifySignature(secret, header, { ...fields, ...change }, at)).toEqual({ ok: false, reason: 'mismatch' });
    }
    expect(verifySignature(`${secret}x`, header, fields, at)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature(secret, header.replace('t=1000000', 't=1000001'), fields, at)).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifySignature(secret, header, fields, { nowSeconds: 1_000_000 + 301 })).toEqual({ ok: false, reason: 'stale' });
    expect(verifySignature(secret, undefined, fields)).toEqual({ ok: false, reason: 'missing' });
    expect(verifySignature(secret, 'v1=abc', fields)).toEqual({ ok: false, reason: 'malformed' });
  });
});
