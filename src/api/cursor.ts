import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

// Page cursors of a key list filtered by authority (api/key-service.ts). The next key to read from may be one the
// caller has no authority over, and a plain id would name it (and its creation time, inside the ULID) to a key
// that may not see it. So such cursors are sealed: AES-256-GCM under a key derived from a secret every replica
// shares, so that a cursor from one replica opens on another, and a forged or altered cursor opens nowhere.

export interface CursorSeal {
  seal(id: string): string;
  /** The id inside `cursor`, or null when it is not a cursor this deployment sealed. */
  open(cursor: string): string | null;
}

const IV = 12;
const TAG = 16;

export function cursorSeal(secret: string): CursorSeal {
  const key = createHash('sha256').update('keygate list cursor\0').update(secret).digest();
  return {
    seal(id) {
      const iv = randomBytes(IV);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const sealed = Buffer.concat([cipher.update(id, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
    },
    open(cursor) {
      const bytes = Buffer.from(cursor, 'base64url');
      if (bytes.length <= IV + TAG) return null;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV));
        decipher.setAuthTag(bytes.subarray(IV, IV + TAG));
        return Buffer.concat([decipher.update(bytes.subarray(IV + TAG)), decipher.final()]).toString('utf8');
      } catch {
        return null;
      }
    },
  };
}
