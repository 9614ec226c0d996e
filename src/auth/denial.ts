import type { ErrorCode } from '../http/errors.ts';

// Its own module so that every check in auth/ (origin, session tokens, verification) can build one without
// importing the verifier, which imports them.

/** A refusal as data (the Unkey `verifyKey` shape): a machine code, a message, optional headers. */
export interface Denial {
  ok: false;
  code: ErrorCode;
  message: string;
  headers?: Record<string, string>;
}

export const deny = (code: ErrorCode, message: string, headers?: Record<string, string>): Denial => ({ ok: false, code, message, headers });
