import type { KeyPolicy } from '../keys/types.ts';
import { holds } from './permissions.ts';
import type { Policy, RouteMatch } from './policy.ts';
import { deny, type Denial } from './verify.ts';

// SPEC §5 step 10: route policy, permission, public-key restrictions.

// Dot segments and encoded slashes or dots could make the upstream resolve a different route from the one
// the policy matched (`/v1/public/../admin`); such paths are refused rather than normalised.
const AMBIGUOUS_PATH = /(^|\/)\.\.?(\/|$)|%2f|%5c|%2e|\/\/|\\/i;

export type RouteDecision = { ok: true; match: RouteMatch | null } | Denial;

export function createAuthorizer(policy: Policy) {
  const noRoute = deny('route_not_allowed', 'No route of this API matches the request.');
  const publicKeyRefused = deny('public_key_not_allowed', 'Public keys cannot call this route; use a private key from a server.');
  return function authorize(key: KeyPolicy, method: string, path: string): RouteDecision {
    if (AMBIGUOUS_PATH.test(path)) return deny('malformed_request', 'The request path holds dot segments or encoded separators.');
    const match = policy.match(method, path);
    if (!match) {
      if (policy.defaultAction === 'deny') return noRoute;
      return key.keyType === 'public' ? publicKeyRefused : { ok: true, match: null };
    }
    const { route } = match;
    if (key.keyType === 'public' && !route.public) return publicKeyRefused;
    if (route.permission && !holds(key.permissions, route.permission)) {
      return deny('insufficient_permissions', `This API key lacks the ${route.permission} permission.`);
    }
    return { ok: true, match };
  };
}

export type Authorizer = ReturnType<typeof createAuthorizer>;
