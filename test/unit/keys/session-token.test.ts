import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTokenVerifier, mintedAt, mintToken, newTokenId, type TokenClaims } from '../../../src/keys/session-token.ts';
import { checksum } from '../../../src/keys/format.ts';

const ring = [
  { id: 'k2', secret: 'second-secret-0123456789abcdef0123456789' },
  { id: 'k1', secret: 'first-secret-0123456789abcdef0123456789ab' },
];
const verifier = createTokenVerifier(ring);
const now = Math.floor(Date.now() / 1000);

const claims = (over: Partial<TokenClaims> = {}): TokenClaims => ({
  id: newTokenId(),
  tenantId: 'ten_01JABCDEFGHJKMNPQRSTVWXYZ0',
  keyId: 'key_01JABCDEFGHJKMNPQRSTVWXYZ0',
  issuedAt: now,
  expiresAt: now + 60,
  valueEndsAt: null,
  valueTag: null,
  permissions: ['calls:read'],
  allowedAssistants: ['asst_1'],
  allowedOrigins: null,
  maxSessions: 1,
  maxUses: null,
  metadata: { user: 'ü' },
  ...over,
});

/** Re-encodes a token's payload and signs it with `secret` under `kid`, as a forger holding that secret would. */
function resign(payload: object, kid: string, secret: string): string {
  const signed = `kg_st_${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${kid}`;
  const body = `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}.`;
  return body + checksum(body);
}

describe('session token format', () => {
  it('round-trips its claims, signed by the first key of the ring, and verifies under any listed key id', () => {
    const c = claims();
    const token = mintToken(c, ring[0]!);
    expect(token).toMatch(/^kg_st_[A-Za-z0-9_-]+\.k2\.[A-Za-z0-9_-]{43}\.[0-9A-Za-z]{6}$/);
    expect(verifier.verify(token, now)).toEqual(c);
    // A token signed by the older key still verifies while that key is listed (rotation).
    const old = mintToken(c, ring[1]!);
    expect(verifier.verify(old, now)).toEqual(c);
    // ... and no longer once it is removed from the ring.
    expect(createTokenVerifier([ring[0]!]).verify(old, now)).toBeNull();
  });

  it('carries when the key value that minted it stops, and when it was minted to the millisecond', () => {
    const c = claims({ valueEndsAt: Date.now() + 5_000 });
    const read = verifier.verify(mintToken(c, ring[0]!), now);
    expect(read?.valueEndsAt).toBe(c.valueEndsAt);
    expect(verifier.verify(mintToken(claims(), ring[0]!), now)?.valueEndsAt).toBeNull();
    expect(verifier.verify(mintToken(claims({ valueTag: '0123456789ab' }), ring[0]!), now)?.valueTag).toBe('0123456789ab');
    expect(verifier.verify(mintToken(claims(), ring[0]!), now)?.valueTag).toBeNull();
    const before = Date.now();
    const minted = claims();
    expect(mintedAt(minted)).toBeGreaterThanOrEqual(before);
    expect(mintedAt(minted)).toBeLessThanOrEqual(Date.now());
  });

  it('refuses expired, truncated, tampered, checksum-broken and re-signed tokens', () => {
    const c = claims();
    const token = mintToken(c, ring[0]!);
    expect(verifier.verify(token, c.expiresAt)).toBeNull(); // expired at its expiry second
    expect(verifier.verify(token.slice(0, -1), now)).toBeNull();
    expect(verifier.verify(token.slice(0, 40), now)).toBeNull();
    expect(verifier.verify(`${token}x`, now)).toBeNull();
    // A payload changed (wider permissions) with the checksum recomputed: the signature no longer matches.
    const [payload, kid, sig] = token.slice(6, -7).split('.') as [string, string, string];
    const wider = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), p: ['*'] })).toString('base64url');
    const tampered = `kg_st_${wider}.${kid}.${sig}.`;
    expect(verifier.verify(tampered + checksum(tampered), now)).toBeNull();
    // The same payload claimed under the other key id, signature kept: refused.
    const swapped = `kg_st_${payload}.k1.${sig}.`;
    expect(verifier.verify(swapped + checksum(swapped), now)).toBeNull();
    // Re-signed with a secret keygate does not hold, under a kid it does, or under a kid it does not know.
    const wire = JSON.parse(Buffer.from(payload, 'base64url').toString());
    expect(verifier.verify(resign(wire, 'k2', 'attacker-secret-0123456789abcdef012345'), now)).toBeNull();
    expect(verifier.verify(resign(wire, 'k9', 'attacker-secret-0123456789abcdef012345'), now)).toBeNull();
    // A correct checksum over garbage, and a correct signature over a payload of the wrong shape.
    expect(verifier.verify(`kg_st_abc.k2.def.${checksum('kg_st_abc.k2.def.')}`, now)).toBeNull();
    expect(verifier.verify(resign({ ...wire, s: -1 }, 'k2', ring[0]!.secret), now)).toBeNull();
    expect(verifier.verify(resign({ ...wire, id: 'tok_x' }, 'k2', ring[0]!.secret), now)).toBeNull();
    expect(verifier.verify(resign({ ...wire, p: 'calls:read' }, 'k2', ring[0]!.secret), now)).toBeNull();
    // Signature padding or trailing characters that base64url decoding would ignore.
    const padded = `kg_st_${payload}.${kid}.${sig}=.`;
    expect(verifier.verify(padded + checksum(padded), now)).toBeNull();
    // Over the length bound, before any parsing.
    expect(verifier.verify(`kg_st_${'A'.repeat(5000)}`, now)).toBeNull();
  });

  it('uses only characters a query parameter and Sec-WebSocket-Protocol carry as they are', () => {
    const token = mintToken(claims({ metadata: { note: 'a/b+c=d ü 😀' }, allowedOrigins: ['https://app.example.com'] }), ring[0]!);
    expect(token).toMatch(/^[A-Za-z0-9_.-]+$/);
    expect(encodeURIComponent(token)).toBe(token);
  });
});
