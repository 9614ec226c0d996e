// The store's errors, in the store's own layer: every layer above (cache, limits, the doors) reads them from
// here, never from a concrete store, so the concrete stores can change without their readers.

/** A page cursor this store did not hand out (nor could have): the caller answers 400, not 503. */
export class InvalidCursorError extends Error {
  constructor() {
    super('not a cursor of this list');
    this.name = 'InvalidCursorError';
  }
}

/** Thrown when a record kept changing under a compare-and-set loop; surfaces as 503. */
export class StoreContentionError extends Error {}

/**
 * A Redis failure, named by the store operation and, when ioredis says, the Redis command it failed on (every
 * store failure answered as 503 is logged with its cause and operation). The message names both
 * and the cause is the Redis error, so a logged error reads e.g. "revokeKey (DEL): CROSSSLOT Keys in request
 * don't hash to the same slot" (pino appends the causes' messages).
 */
export class StoreError extends Error {
  readonly op: string;
  readonly command: string | null;
  constructor(op: string, cause: unknown) {
    const command = commandOf(cause);
    super(`${op}${command ? ` (${command})` : ''}`, { cause });
    this.name = 'StoreError';
    this.op = op;
    this.command = command;
  }
}

/** The command a Redis error came from: ioredis names it on server replies and aborted commands. */
function commandOf(err: unknown): string | null {
  const command = (err as { command?: { name?: unknown } } | null)?.command;
  return typeof command?.name === 'string' ? command.name.toUpperCase() : null;
}

/** The store could not answer and nothing usable was cached: the caller answers 503, never 401. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('key store unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}
