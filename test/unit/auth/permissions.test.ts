import { describe, expect, it } from 'vitest';
import { covers, grantsKeyManagement, notCovered } from '../../../src/auth/permissions.ts';

describe('permission wildcards', () => {
  it('lets * and resource:* cover narrower permissions, never wider ones', () => {
    expect(covers('*', 'calls:read')).toBe(true);
    expect(covers('*', '*')).toBe(true);
    expect(covers('calls:*', 'calls:read')).toBe(true);
    expect(covers('calls:*', 'calls:*')).toBe(true);
    expect(covers('calls:*', 'callsx:read')).toBe(false);
    expect(covers('calls:*', '*')).toBe(false);
    expect(covers('calls:read', 'calls:*')).toBe(false);
    expect(covers('calls:read', 'calls:write')).toBe(false);
    expect(notCovered(['calls:*', 'usage:read'], ['calls:write', 'usage:read', 'audit:read'])).toEqual(['audit:read']);
  });

  it('knows which permissions manage keys', () => {
    expect(grantsKeyManagement('*')).toBe(true);
    expect(grantsKeyManagement('api-keys:*')).toBe(true);
    expect(grantsKeyManagement('api-keys:read')).toBe(true);
    expect(grantsKeyManagement('calls:*')).toBe(false);
  });
});
