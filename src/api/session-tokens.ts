import { notCovered } from '../auth/permissions.ts';
import { originsWithin, within } from '../auth/session-token.ts';
import type { Identity } from '../auth/verify.ts';
import { ApiError } from '../http/errors.ts';
import { MAX_TOKEN_LENGTH, mintToken, newTokenId, type SigningKey, type TokenClaims } from '../keys/session-token.ts';
import type { KeyPolicy } from '../keys/types.ts';
import type { KeyStore } from '../store/types.ts';
import type { MintSessionTokenBody } from './schemas.ts';

// Minting session tokens: a key hands a browser or phone a short-lived credential narrowed to what the client
// needs. The authority rule that governs keys governs tokens: a token holds nothing its key does not, and the
// token is dead as soon as its key no longer covers it (auth/session-token.ts).

export const MINT_PERMISSION = 'session-tokens:write';

/** What a mint answers (201), and what a token's status read answers (without `token`): the claims, times as ISO. */
export type SessionTokenView = Omit<TokenClaims, 'issuedAt' | 'expiresAt' | 'valueEndsAt' | 'valueTag'> & { issuedAt: string; expiresAt: string };

// `valueEndsAt` is not shown: a token minted with a value in its grace period has its expiresAt at that end.
export const viewOf = ({ valueEndsAt: _valueEnd, valueTag: _valueTag, ...c }: TokenClaims): SessionTokenView => ({
  ...c,
  issuedAt: new Date(c.issuedAt * 1000).toISOString(),
  expiresAt: new Date(c.expiresAt * 1000).toISOString(),
});

/** The key a token is minted with: its id, expiry (ms since epoch, null for never) and policy. */
export interface MintingKey {
  id: string;
  expiresAt: number | null;
  policy: KeyPolicy;
  /** ms since epoch: when the value that authenticated the mint stops (a rotated key's previous value); else null. */
  valueEndsAt?: number | null;
  /** valueTagOf the value that authenticated the mint; null (or absent) for a mint by key id (the admin's). */
  valueTag?: string | null;
}

const disabled = () => new ApiError('not_found', 'Session tokens are not enabled on this keygate: configure tokens.signingKeys (every replica the same).');

function narrowing(key: KeyPolicy, body: MintSessionTokenBody) {
  if (body.assistantId !== undefined && body.allowedAssistants !== undefined) {
    throw new ApiError('validation_error', 'assistantId: give assistantId or allowedAssistants, not both', { details: [{ path: 'assistantId', message: 'give assistantId or allowedAssistants, not both' }] });
  }
  const permissions = body.permissions ?? null;
  const assistants = body.allowedAssistants ?? (body.assistantId !== undefined ? [body.assistantId] : null);
  const origins = body.allowedOrigins ?? null;
  const wider: string[] = [];
  const missing = permissions ? notCovered(key.permissions, permissions) : [];
  if (missing.length) wider.push(`permissions (${missing.join(', ')})`);
  if (assistants && !within(key.allowedAssistants, assistants)) wider.push('allowedAssistants');
  if (origins && !originsWithin(key.allowedOrigins, origins)) wider.push('allowedOrigins');
  if (wider.length) throw new ApiError('insufficient_permissions', `A session token cannot be wider than its key: ${wider.join('; ')}.`);
  return { permissions, assistants, origins };
}

/** Mint counts per key and minute, written as one audit entry each: minting at the key's rate cannot flood the log. */
export class MintAudit {
  readonly #store: KeyStore;
  /** `tenantId keyId actor minute` → count. Bounded: at MAX_PENDING entries they are written at once. */
  #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  static readonly MAX_PENDING = 1_000;
  #onError: (err: unknown) => void;

  constructor(store: KeyStore, onError: (err: unknown) => void) {
    this.#store = store;
    this.#onError = onError;
  }

  count(tenantId: string, keyId: string, actor: string, at: number): void {
    const minute = new Date(at - (at % 60_000)).toISOString();
    const id = `${tenantId} ${keyId} ${actor} ${minute}`;
    this.#pending.set(id, (this.#pending.get(id) ?? 0) + 1);
    if (this.#pending.size >= MintAudit.MAX_PENDING) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), 60_000 - (at % 60_000) + 1_000).unref();
  }

  /** Writes every pending count (at the end of each minute, when the map is full, and at shutdown). */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const pending = this.#pending;
    this.#pending = new Map();
    await Promise.all(
      [...pending].map(([id, count]) => {
        const [tenantId, keyId, actor, minute] = id.split(' ') as [string, string, string, string];
        return this.#store.appendAudit(tenantId, { action: 'session_token.minted', actor, keyId, details: { count, minute } }).catch(this.#onError);
      }),
    );
  }
}

export class SessionTokenService {
  readonly #signer: SigningKey | null;
  readonly #maxTtl: number;
  readonly #audit: MintAudit;

  constructor(deps: { signer: SigningKey | null; maxTtlSeconds: number; audit: MintAudit }) {
    this.#signer = deps.signer;
    this.#maxTtl = deps.maxTtlSeconds;
    this.#audit = deps.audit;
  }

  get enabled(): boolean {
    return this.#signer !== null;
  }

  /** Mints a token of `key` (already known to be valid, active and private), narrowed as `body` asks. */
  mint(tenantId: string, key: MintingKey, body: MintSessionTokenBody, actor: string): SessionTokenView & { token: string } {
    if (!this.#signer) throw disabled();
    if (key.policy.keyType !== 'private') throw new ApiError('public_key_not_allowed', 'Only a private key can mint session tokens.');
    if (body.ttlSeconds > this.#maxTtl) {
      throw new ApiError('validation_error', `ttlSeconds: at most ${this.#maxTtl}`, { details: [{ path: 'ttlSeconds', message: `at most ${this.#maxTtl}` }] });
    }
    const { permissions, assistants, origins } = narrowing(key.policy, body);
    const now = Date.now();
    const issuedAt = Math.floor(now / 1000);
    // A token never outlives its key, nor the key value that minted it.
    const valueEndsAt = key.valueEndsAt ?? null;
    const ends = Math.min(key.expiresAt ?? Infinity, valueEndsAt ?? Infinity);
    const expiresAt = Math.min(issuedAt + body.ttlSeconds, Math.floor(ends / 1000));
    const claims: TokenClaims = {
      id: newTokenId(),
      tenantId,
      keyId: key.id,
      issuedAt,
      expiresAt,
      valueEndsAt,
      valueTag: key.valueTag ?? null,
      permissions,
      allowedAssistants: assistants,
      allowedOrigins: origins,
      maxSessions: body.maxSessions,
      maxUses: body.maxUses,
      metadata: body.metadata ?? null,
    };
    const token = mintToken(claims, this.#signer);
    // Each claim is bounded, their sum is not: a token the verifier would not read is refused here, not handed out.
    if (token.length > MAX_TOKEN_LENGTH) {
      const message = `the token would be ${token.length} characters, over ${MAX_TOKEN_LENGTH}: narrow with fewer or shorter permissions, assistants, origins or metadata`;
      throw new ApiError('validation_error', `(body): ${message}`, { details: [{ path: '(body)', message }] });
    }
    this.#audit.count(tenantId, key.id, actor, now);
    return { token, ...viewOf(claims) };
  }

  /** GET /keygate/v1/session-tokens/current: what the presented token is. */
  status(identity: Identity): SessionTokenView {
    if (!identity.token) throw new ApiError('not_found', 'Only a session token has a status here; a key reads itself at /keygate/v1/api-keys/current.');
    return viewOf(identity.token);
  }
}
