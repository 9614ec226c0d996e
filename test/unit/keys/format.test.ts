import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHECKSUM_CHARS, RANDOM_CHARS, createKeyFormat } from '../../../src/keys/format.ts';
import { DIGEST_LENGTH, createKeyHasher, digestOfHex, hexOfDigest } from '../../../src/keys/hashing.ts';

const format = createKeyFormat({ private: 'kg_sk_', public: 'kg_pk_' });

describe('key format', () => {
  it('generates keys with the type prefix, >= 128 bits of randomness and a valid checksum', () => {
    expect(RANDOM_CHARS * Math.log2(62)).toBeGreaterThanOrEqual(128);
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const k = format.generate(i % 2 ? 'public' : 'private');
      expect(k).toMatch(/^kg_(sk|pk)_[A-Za-z0-9]+$/);
      expect(k).toHaveLength(6 + RANDOM_CHARS + CHECKSUM_CHARS);
      expect(format.parse(k)).toBe(i % 2 ? 'public' : 'private');
      seen.add(k);
    }
    expect(seen.size).toBe(1000);
  });

  it('rejects any single-character change (checksum), wrong prefixes and wrong lengths', () => {
    const k = format.generate('private');
    fc.assert(
      fc.property(fc.integer({ min: 6, max: k.length - 1 }), fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'), (pos, ch) => {
        fc.pre(k[pos] !== ch);
        return format.parse(k.slice(0, pos) + ch + k.slice(pos + 1)) === null;
      }),
    );
    expect(format.parse(`kg_xx_${k.slice(6)}`)).toBeNull();
    expect(format.parse(k.slice(0, -1))).toBeNull();
    expect(format.parse(`${k}0`)).toBeNull();
    expect(format.parse('')).toBeNull();
    expect(format.visiblePrefix(k)).toBe(k.slice(0, 12));
  });

  it('hashes with SHA-256, or HMAC-SHA-256 with a pepper', () => {
    expect(createKeyHasher(null)('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const peppered = createKeyHasher('pepper-pepper-pepper')('abc');
    expect(peppered).toMatch(/^[0-9a-f]{64}$/);
    expect(peppered).not.toBe(createKeyHasher(null)('abc'));
  });

  it('gives the same hash as a 32-character digest (what the key cache keys by), convertible both ways', () => {
    for (const hasher of [createKeyHasher(null), createKeyHasher('pepper-pepper-pepper')]) {
      fc.assert(
        fc.property(fc.string({ unit: 'binary' }), (key) => {
          const digest = hasher.digest(key);
          expect(digest).toHaveLength(DIGEST_LENGTH);
          expect(hexOfDigest(digest)).toBe(hasher(key));
          expect(digestOfHex(hasher(key))).toBe(digest);
        }),
      );
    }
  });
});
