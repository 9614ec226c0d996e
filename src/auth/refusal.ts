import type { ErrorCode } from '../http/errors.ts';

// Its own module so that every check in auth/ (origin, session tokens, verification) can build one without
// importing the verifier, which imports them.

/**
 * One auth stage's refusal as data (the Unkey `verifyKey` shape): a machine code, a message, optional headers; no
 * identity yet (the pipeline adds it: `Refusal` in auth/pipeline.ts).
 */
export interface StageRefusal {
  ok: false;
  code: ErrorCode;
  message: string;
  headers?: Record<string, string>;
}

export const refuse = (code: ErrorCode, message: string, headers?: Record<string, string>): StageRefusal => ({ ok: false, code, message, headers });
