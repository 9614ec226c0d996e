import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeTime, ulid } from 'ulid';
import { checksum } from './format.ts';

// Session tokens: short-lived credentials a platform's backend mints with one of its keys and hands to a browser
// or phone, so the client never holds a key. A token is self-contained and signed, so checking one costs an HMAC
// and the minting key's cached record, never a store read of its own.
//
// Layout: `kg_st_<payload>.<kid>.<signature>.<checksum>`
//   payload   base64url of the claims' JSON
//   kid       the id of the signing key that signed it (`tokens.signingKeys`), so the secret can be rotated:
//             new tokens are signed with the first key, and every listed key still verifies until removed
//   signature base64url of HMAC-SHA-256(secret, "kg_st_<payload>.<kid>")
//   checksum  6 base62 chars of CRC32 of everything before it, as keys carry: a secret scanner can recognise
//             a token, and a typo is refused, without the secret
// Every character is base64url, `.` or base62: valid in a query parameter and in Sec-WebSocket-Protocol.
//
// HMAC-SHA-256, not Ed25519: only keygate replicas verify tokens (they are opaque to clients and upstreams), and
// they already share secrets through configuration; an HMAC check costs about a microsecond, an Ed25519
// verification some fifty.

export const SESSION_TOKEN_PREFIX = 'kg_st_';
/** Longer than any token keygate mints (claims are bounded at minting): refused before any parsing. */
export const MAX_TOKEN_LENGTH = 4096;
export const TOKEN_ID = /^tok_[0-9A-HJKMNP-TV-Z]{26}$/;

export interface SigningKey {
  id: string;
  secret: string;
}

/** What a token says about itself. Absent narrowing means "as the minting key". */
export interface TokenClaims {
  /** Token id (`tok_` + ULID). */
  id: string;
  tenantId: string;
  /** The minting key's id: its record decides whether the token still works, and it is charged for all. */
  keyId: string;
  /** Seconds since epoch. */
  issuedAt: number;
  expiresAt: number;
  /**
   * ms since epoch: when the key value that minted the token stops (it was minted with a rotated key's previous
   * value, in its grace period); the token stops with it. Null when minted with a current value or by the admin.
   */
  valueEndsAt: number | null;
  /**
   * Which of its key's values minted it (valueTagOf its hash), for a token minted with a key value; null when
   * the admin minted it by key id. The token works only while that value is one of its key's live values.
   */
  valueTag: string | null;
  permissions: string[] | null;
  allowedAssistants: string[] | null;
  allowedOrigins: string[] | null;
  /** WebSocket sessions the token may open over its life (default 1: a replayed token opens nothing). */
  maxSessions: number;
  /** HTTP requests the token may make over its life; null = as many as the key's limits allow. */
  maxUses: number | null;
  metadata: Record<string, unknown> | null;
}

/** The claims on the wire: short names, nulls left out. */
interface Wire {
  v: 1;
  id: string;
  t: string;
  k: string;
  iat: number;
  exp: number;
  ve?: number;
  vt?: string;
  p?: string[];
  a?: string[];
  o?: string[];
  s: number;
  u?: number;
  m?: Record<string, unknown>;
}

const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
const mac = (secret: string, signed: string): Buffer => createHmac('sha256', secret).update(signed).digest();

export const newTokenId = (): string => `tok_${ulid()}`;

/**
 * A key value's tag in a token: the first 12 hex digits (48 bits) of its stored hash — enough to tell a key's
 * two or three live values apart, and nothing an attacker can use (the hash of a random 256-bit key).
 */
export const valueTagOf = (hashHex: string): string => hashHex.slice(0, 12);
const VALUE_TAG = /^[0-9a-f]{12}$/;

/** When a token was minted, to the millisecond: its id is a ULID, which begins with that time. */
export const mintedAt = (claims: TokenClaims): number => decodeTime(claims.id.slice('tok_'.length));

/** A random secret for a signing key (embedded store: tokens then live as long as the process). */
export const randomSigningKey = (): SigningKey => ({ id: 'local', secret: randomBytes(32).toString('base64url') });

export function mintToken(claims: TokenClaims, key: SigningKey): string {
  const wire: Wire = { v: 1, id: claims.id, t: claims.tenantId, k: claims.keyId, iat: claims.issuedAt, exp: claims.expiresAt, s: claims.maxSessions };
  if (claims.valueEndsAt !== null) wire.ve = claims.valueEndsAt;
  if (claims.valueTag !== null) wire.vt = claims.valueTag;
  if (claims.permissions) wire.p = claims.permissions;
  if (claims.allowedAssistants) wire.a = claims.allowedAssistants;
  if (claims.allowedOrigins) wire.o = claims.allowedOrigins;
  if (claims.maxUses !== null) wire.u = claims.maxUses;
  if (claims.metadata) wire.m = claims.metadata;
  const signed = `${SESSION_TOKEN_PREFIX}${b64(JSON.stringify(wire))}.${key.id}`;
  const body = `${signed}.${b64(mac(key.secret, signed))}.`;
  return body + checksum(body);
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function claimsOf(w: unknown): TokenClaims | null {
  if (typeof w !== 'object' || w === null || Array.isArray(w)) return null;
  const x = w as Partial<Wire>;
  if (x.v !== 1 || typeof x.id !== 'string' || !TOKEN_ID.test(x.id) || typeof x.t !== 'string' || typeof x.k !== 'string') return null;
  if (!isCount(x.iat) || !isCount(x.exp) || !isCount(x.s)) return null;
  if ((x.p !== undefined && !isStrings(x.p)) || (x.a !== undefined && !isStrings(x.a)) || (x.o !== undefined && !isStrings(x.o))) return null;
  if ((x.u !== undefined && !isCount(x.u)) || (x.ve !== undefined && !isCount(x.ve))) return null;
  if (x.vt !== undefined && (typeof x.vt !== 'string' || !VALUE_TAG.test(x.vt))) return null;
  if (x.m !== undefined && (typeof x.m !== 'object' || x.m === null || Array.isArray(x.m))) return null;
  return {
    id: x.id,
    tenantId: x.t,
    keyId: x.k,
    issuedAt: x.iat,
    expiresAt: x.exp,
    valueEndsAt: x.ve ?? null,
    valueTag: x.vt ?? null,
    permissions: x.p ?? null,
    allowedAssistants: x.a ?? null,
    allowedOrigins: x.o ?? null,
    maxSessions: x.s,
    maxUses: x.u ?? null,
    metadata: x.m ?? null,
  };
}

export interface TokenVerifier {
  /** The claims of a well-formed, correctly signed, unexpired token; null for anything else. */
  verify(token: string, nowSeconds: number): TokenClaims | null;
}

const CHECKSUM_CHARS = 6;

/** Verifies against every key of the ring by id; a kid not in the ring (or removed from it) verifies nothing. */
export function createTokenVerifier(ring: readonly SigningKey[]): TokenVerifier {
  const byId = new Map(ring.map((k) => [k.id, k.secret]));
  return {
    verify(token, nowSeconds) {
      if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(SESSION_TOKEN_PREFIX)) return null;
      const cut = token.length - CHECKSUM_CHARS;
      if (cut <= SESSION_TOKEN_PREFIX.length || checksum(token.slice(0, cut)) !== token.slice(cut)) return null;
      const parts = token.slice(SESSION_TOKEN_PREFIX.length, cut).split('.');
      // payload, kid, signature, and the empty part before the checksum
      if (parts.length !== 4 || parts[3] !== '') return null;
      const [payload, kid, signature] = parts as [string, string, string];
      const secret = byId.get(kid);
      if (secret === undefined) return null;
      const expected = mac(secret, `${SESSION_TOKEN_PREFIX}${payload}.${kid}`);
      const given = Buffer.from(signature, 'base64url');
      // base64url decoding ignores stray characters: the signature must be exactly the canonical encoding.
      if (given.length !== expected.length || b64(given) !== signature || !timingSafeEqual(given, expected)) return null;
      let claims: TokenClaims | null;
      try {
        claims = claimsOf(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
      } catch {
        return null;
      }
      if (claims === null || claims.expiresAt <= nowSeconds) return null;
      return claims;
    },
  };
}

/** Cheap shape test, for telling a token from a key before any work: the prefix alone. */
export const looksLikeToken = (value: string): boolean => value.startsWith(SESSION_TOKEN_PREFIX);
