import { closeSync, openSync, readSync, statSync } from 'node:fs';

// Reading a configuration, route policy or TLS file, bounded. A module of its own, with nothing but node:fs: the
// serving process reads TLS files this way when no check went before it, and must not load yaml and zod for that.

/** A configuration or route policy file is read whole, so its size is bounded (a policy of thousands of routes is far under). */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

/**
 * A configuration file's text; throws when it cannot be read or is larger than MAX_CONFIG_FILE_BYTES. A file that
 * is not a regular one (a FIFO, a device such as /dev/zero) has no size to check beforehand, so the read itself
 * stops at the bound: read whole, a device that never ends took all the memory there was.
 */
export function readConfigFile(file: string): string {
  const { size } = statSync(file);
  if (size > MAX_CONFIG_FILE_BYTES) throw new Error(`${size} bytes; at most ${MAX_CONFIG_FILE_BYTES} are read`);
  const fd = openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_CONFIG_FILE_BYTES) throw new Error(`more than ${MAX_CONFIG_FILE_BYTES} bytes; at most ${MAX_CONFIG_FILE_BYTES} are read`);
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** How a check reads a configuration or route policy file's text: readConfigFile unless the caller says otherwise. */
export type ReadFile = (file: string) => string;
