import { randomInt } from 'node:crypto';
import { crc32 } from 'node:zlib';

// Key layout: <prefix><24 random base62 chars><6 base62 chars of CRC32(prefix + random)>.
// 24 base62 chars carry log2(62^24) ≈ 142.9 bits of randomness (a key needs at least 128 bits to be unguessable).
// The checksum lets a typo or a scanner's guess be rejected without touching the store
// (the same idea as GitHub's token format).

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const RANDOM_CHARS = 24;
export const CHECKSUM_CHARS = 6;
export const VISIBLE_PREFIX_CHARS = 12;

export type KeyType = 'private' | 'public';

function base62(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function randomBase62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[randomInt(62)];
  return out;
}

export function checksum(body: string): string {
  return base62(crc32(body), CHECKSUM_CHARS);
}

// Digit values by character code (-1: not base62), so a presented checksum is compared as a number.
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;

/** The number the base62 digits of `s` from `start` to its end stand for; -1 when one is not a digit. */
function base62Value(s: string, start: number): number {
  let n = 0;
  for (let i = start; i < s.length; i++) {
    const code = s.charCodeAt(i);
    const d = code < 128 ? DIGIT[code]! : -1;
    if (d < 0) return -1;
    n = n * 62 + d;
  }
  return n;
}

export interface KeyFormat {
  generate(type: KeyType): string;
  /** The key's type when prefix, length, alphabet and checksum are right; otherwise null. */
  parse(key: string): KeyType | null;
  visiblePrefix(key: string): string;
}

export function createKeyFormat(prefixes: Record<KeyType, string>): KeyFormat {
  // Longest prefix first, so a prefix that starts another never shadows it.
  const entries = (Object.entries(prefixes) as Array<[KeyType, string]>).sort((a, b) => b[1].length - a[1].length);
  // Sticky, so the body is checked where it starts without slicing it off.
  const bodyPattern = new RegExp(`[0-9A-Za-z]{${RANDOM_CHARS + CHECKSUM_CHARS}}$`, 'y');
  return {
    generate(type) {
      const body = prefixes[type] + randomBase62(RANDOM_CHARS);
      return body + checksum(body);
    },
    parse(key) {
      for (const [type, prefix] of entries) {
        if (!key.startsWith(prefix)) continue;
        if (key.length !== prefix.length + RANDOM_CHARS + CHECKSUM_CHARS) return null;
        bodyPattern.lastIndex = prefix.length;
        if (!bodyPattern.test(key)) return null;
        const cut = key.length - CHECKSUM_CHARS;
        return crc32(key.slice(0, cut)) === base62Value(key, cut) ? type : null;
      }
      return null;
    },
    visiblePrefix: (key) => key.slice(0, VISIBLE_PREFIX_CHARS),
  };
}
