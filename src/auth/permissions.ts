// Permissions are `resource:action`; `*` grants everything and `resource:*` every action on a resource
//. A grant covers a wanted permission — itself possibly a wildcard — when it is at least as wide.

export const PERMISSION = /^(\*|[a-z0-9][a-z0-9_.-]*:(\*|[a-z0-9][a-z0-9_.-]*))$/;

export const MANAGEMENT_RESOURCE = 'api-keys';

export function covers(grant: string, wanted: string): boolean {
  if (grant === '*' || grant === wanted) return true;
  if (wanted === '*') return false;
  if (grant.endsWith(':*')) return wanted.startsWith(grant.slice(0, -1));
  return false;
}

export const holds = (granted: readonly string[], wanted: string): boolean => granted.some((g) => covers(g, wanted));

/** Those of `wanted` that `granted` does not cover. */
export const notCovered = (granted: readonly string[], wanted: readonly string[]): string[] => wanted.filter((w) => !holds(granted, w));

/** Resources of the management permissions: `api-keys:*`, `webhooks:*` (a tenant's webhook endpoints) and `session-tokens:*` (minting). */
export const MANAGEMENT_RESOURCES = [MANAGEMENT_RESOURCE, 'webhooks', 'session-tokens'] as const;

/** True when the permission gives any management right (`api-keys:`, `webhooks:`), which a public key may never hold. */
export const grantsKeyManagement = (permission: string): boolean =>
  permission === '*' || MANAGEMENT_RESOURCES.some((r) => permission.startsWith(`${r}:`));
