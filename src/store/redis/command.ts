import { InvalidCursorError, StoreContentionError, StoreError } from '../errors.ts';
import type { RedisClient } from './connect.ts';
import { scriptKeyCounts, scripts, type ScriptName } from './scripts.ts';

// What every part of the Redis store runs its commands through: the Lua scripts, defined once per connection,
// and the naming of a failure after the store operation it broke.

/** Defines every script of scripts.ts on the connection, as the command `kg_<name>`. */
export function defineScripts(client: RedisClient): void {
  for (const [name, lua] of Object.entries(scripts)) {
    client.defineCommand(`kg_${name}`, { numberOfKeys: scriptKeyCounts[name as ScriptName], lua });
  }
}

export type RunScript = (name: ScriptName, keys: string[], args: Array<string | number>) => Promise<number>;

/** Runs the scripts `defineScripts` made on `client`. */
export function scriptRunner(client: RedisClient): RunScript {
  return (name, keys, args) => {
    const cmd = (client as unknown as Record<string, (...a: Array<string | number>) => Promise<number>>)[`kg_${name}`]!;
    return cmd.call(client, ...keys, ...args);
  };
}

/** Runs a store operation; a Redis failure becomes a StoreError naming it (contention and bad cursors stay as they are). */
export async function named<T>(op: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw err instanceof StoreError || err instanceof StoreContentionError || err instanceof InvalidCursorError ? err : new StoreError(op, err);
  }
}
