import { monotonicFactory } from 'ulid';

// Monotonic within a process, so ids created in the same millisecond still sort in creation order (lists
// and cursors rely on it).
const ulid = monotonicFactory();

export const newKeyId = (): string => `key_${ulid()}`;
export const newTenantId = (): string => `ten_${ulid()}`;
export const newAuditId = (): string => `aud_${ulid()}`;
export const KEY_ID = /^key_[0-9A-HJKMNP-TV-Z]{26}$/;
export const TENANT_ID = /^ten_[0-9A-HJKMNP-TV-Z]{26}$/;
