import type { KeyPolicy } from '../keys/types.ts';
import { holds } from './permissions.ts';
import type { Policy, RouteMatch } from './policy.ts';
import { refuse, type StageRefusal } from './verify.ts';

// Route policy, permission, public-key restrictions. `path` is the canonical path
// (http/target.ts), so what is matched here is what the upstream routes.

export type RouteDecision = { ok: true; match: RouteMatch | null } | StageRefusal;

export function createAuthorizer(policy: Policy) {
  const noRoute = refuse('route_not_allowed', 'No route of this API matches the request.');
  const publicKeyRefused = refuse('public_key_not_allowed', 'Public keys cannot call this route; use a private key from a server.');
  const { defaultPermission } = policy;
  const narrowKey = refuse('insufficient_permissions', `This route is outside the route policy; it needs the ${defaultPermission} permission.`);
  return function authorize(key: KeyPolicy, method: string, path: string): RouteDecision {
    const match = policy.match(method, path);
    if (!match) {
      if (policy.defaultAction === 'deny') return noRoute;
      if (key.keyType === 'public') return publicKeyRefused;
      // A key narrowed to some routes stays narrow: the routes the policy does not list need defaultPermission.
      return holds(key.permissions, defaultPermission) ? { ok: true, match: null } : narrowKey;
    }
    const { route } = match;
    if (key.keyType === 'public' && !route.public) return publicKeyRefused;
    if (route.permission && !holds(key.permissions, route.permission)) {
      return refuse('insufficient_permissions', `This API key lacks the ${route.permission} permission.`);
    }
    return { ok: true, match };
  };
}

export type Authorizer = ReturnType<typeof createAuthorizer>;
