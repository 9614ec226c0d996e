import { createHash, timingSafeEqual } from 'node:crypto';

/** Who is calling the admin API: the admin token (`admin`, write) or a named operator token from `admin.tokens`. */
export interface Operator {
  /** `admin` for `admin.token`; a configured name otherwise. */
  name: string;
  /** `read` may call every GET; every other method is refused 403 `insufficient_permissions`. */
  role: 'read' | 'write';
  /** False for `admin.token`: its actions are audited as `admin`, as before operators existed. */
  named: boolean;
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
  const byDigest = new Map<string, Operator>(named.map((o) => [o.sha256, { name: o.name, role: o.role, named: true }]));
  const adminOperator: Operator = { name: 'admin', role: 'write', named: false };
  return (token) => {
    const digest = sha256(token);
    if (timingSafeEqual(digest, admin)) return adminOperator;
    return byDigest.get(digest.toString('hex')) ?? null;
  };
}

/** Methods a `read` operator may use. */
export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
