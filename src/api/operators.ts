import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../http/errors.ts';
import type { FailureBlock } from '../limits/types.ts';

/** Who is calling the admin API: the admin token (`admin`, write) or a named operator token from `admin.tokens`. */
export interface Operator {
  /** `admin` for `admin.token`; a configured name otherwise. */
  name: string;
  /** `read` may call every GET; every other method is refused 403 `insufficient_permissions`. */
  role: 'read' | 'write';
  /** False for `admin.token`: its actions are audited as `admin`, as before operators existed. */
  named: boolean;
  /**
   * The SHA-256 of the token's SHA-256 it was resolved from. A console session keeps it, and each use of the
   * session finds the operator configured now by it: a session on Redis outlives a restart, and a restart is how
   * an operator is removed, given another role or another token. It cannot be used to sign in.
   */
  credential?: string;
}

export interface OperatorConfig {
  name: string;
  sha256: string;
  role: 'read' | 'write';
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Resolves a presented token to its operator. Tokens are compared as SHA-256 digests: the admin token in constant
 * time (equal-length digests), named ones by looking their digest up (a lookup keyed by a digest tells a caller
 * nothing about any token's bytes). The configuration holds only the digests of the named tokens.
 */
export function createOperators(adminToken: string, named: readonly OperatorConfig[]): (token: string) => Operator | null {
  const admin = sha256(adminToken);
  const byDigest = new Map<string, Operator>(named.map((o) => [o.sha256, { name: o.name, role: o.role, named: true, credential: credentialOf(Buffer.from(o.sha256, 'hex')) }]));
  const adminOperator: Operator = { name: 'admin', role: 'write', named: false, credential: credentialOf(admin) };
  return (token) => {
    const digest = sha256(token);
    if (timingSafeEqual(digest, admin)) return adminOperator;
    return byDigest.get(digest.toString('hex')) ?? null;
  };
}

const credentialOf = (tokenDigest: Buffer): string => createHash('sha256').update(tokenDigest).digest('hex');

/** The operator configured now for a credential a session kept (see `Operator.credential`), or null. */
export function operatorsByCredential(adminToken: string, named: readonly OperatorConfig[]): (credential: string | undefined) => Operator | null {
  const of = createOperators(adminToken, named);
  const all = [of(adminToken)!, ...named.map((o) => ({ name: o.name, role: o.role, named: true, credential: credentialOf(Buffer.from(o.sha256, 'hex')) }))];
  const byCredential = new Map(all.map((o) => [o.credential!, o]));
  return (credential) => (credential ? (byCredential.get(credential) ?? null) : null);
}

/** Methods a `read` operator may use. */
export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The failed-attempt block as the internal listener uses it: the proxy's own, and how a caller's address is read. */
export interface OperatorGuard {
  failures: FailureBlock;
  clientIp: (req: IncomingMessage) => string;
}

/**
 * Token guessing at the admin API and the console's sign-in meets the proxy's failed-attempt block
 * (`limits.failedAttempts`): each wrong token is counted against the caller's address before it is answered,
 * and a blocked address is refused 429 `too_many_failed_attempts`, whatever token it sends, until the block ends.
 * Named operators' tokens are configured as digests, so keygate cannot require them to be long; this is what keeps
 * a short one from being guessed at a few thousand tries a second. `guard` is null until the store is open (the
 * admin API answers nothing then; the sign-in goes unguarded for those first moments).
 */
export function guardedOperators(operatorOf: (token: string) => Operator | null, guard: () => OperatorGuard | null): (token: string, req: IncomingMessage) => Promise<Operator | null> {
  return async (token, req) => {
    const g = guard();
    const ip = g ? g.clientIp(req) : '';
    const blocked = g ? g.failures.blockedFor(ip) : 0;
    if (blocked > 0) throw new ApiError('too_many_failed_attempts', 'Too many failed authentication attempts from this address.', { headers: { 'Retry-After': String(blocked) } });
    const operator = operatorOf(token);
    if (!operator && g) await g.failures.fail(ip);
    return operator;
  };
}
