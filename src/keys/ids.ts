import { ulid } from 'ulid';

export const newKeyId = (): string => `key_${ulid()}`;
export const newTenantId = (): string => `ten_${ulid()}`;
export const KEY_ID = /^key_[0-9A-HJKMNP-TV-Z]{26}$/;
export const TENANT_ID = /^ten_[0-9A-HJKMNP-TV-Z]{26}$/;
