import { createHash } from 'node:crypto';
import type { Operator } from '../api/operators.ts';
import { StoreError, StoreUnavailableError } from '../store/errors.ts';
import type { RedisClient } from '../store/redis/connect.ts';
import { newSessionId, sessionsFull, type ConsoleSessionBounds, type ConsoleSessions } from './sessions.ts';

// Console sessions on Redis, shared by every worker and replica: a sign-in on one is known to all, and a sign-out
// on one ends the session everywhere at once. Three keys under the `{console}` hash tag (one Cluster slot), each
// operation one script over all three, so the bounds hold across replicas signing in at the same moment:
//   sessions   hash: SHA-256 of the session id → {"e": expiry (unix ms), "o": the operator, with its credential}. The id itself is never
//              stored, so reading Redis does not let anyone sign in.
//   expiry     sorted set: the same digests scored by their expiry (the global bound, the oldest, the sweep).
//   operators  hash: operator name → that operator's digests, oldest first, space-separated (at most
//              maxSessionsPerOperator).
// Each session's absolute expiry is the one stored (checked on every read, on Redis's clock so replicas agree);
// the keys' Redis TTL is the newest session's, so nothing outlives the last session.

const HELPERS = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ownOf(name)
  local list = {}
  local own = redis.call('HGET', KEYS[3], name)
  if own then for d in string.gmatch(own, '%S+') do list[#list + 1] = d end end
  return list
end
local function drop(digest)
  local raw = redis.call('HGET', KEYS[1], digest)
  redis.call('ZREM', KEYS[2], digest)
  if not raw then return end
  redis.call('HDEL', KEYS[1], digest)
  local name = cjson.decode(raw).o.name
  local rest = {}
  for _, d in ipairs(ownOf(name)) do if d ~= digest then rest[#rest + 1] = d end end
  if #rest == 0 then redis.call('HDEL', KEYS[3], name) else redis.call('HSET', KEYS[3], name, table.concat(rest, ' ')) end
end
`;

/**
 * Expired sessions removed per sign-in, at most: a sign-in after many sessions ended together does bounded work,
 * and the rest go with the next sign-ins (the bounds count live sessions only, so they do not wait for it).
 */
const SWEEP = 100;

/**
 * KEYS: sessions, expiry, operators. ARGV: digest, operatorJson, operatorName, max, perOperator, ttlMs.
 * → {1, expiresAt} | {0, ms until the oldest session ends} (at the global bound).
 */
const createLua = `${HELPERS}
local t = now()
for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', t, 'LIMIT', 0, ${SWEEP})) do drop(d) end
local own = {}
for _, d in ipairs(ownOf(ARGV[3])) do
  local e = redis.call('ZSCORE', KEYS[2], d)
  if e and tonumber(e) > t then own[#own + 1] = d else drop(d) end
end
local perOperator = tonumber(ARGV[5])
if #own >= perOperator then
  for i = 1, #own - perOperator + 1 do drop(own[i]) end
elseif redis.call('ZCOUNT', KEYS[2], '(' .. t, '+inf') >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. t, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return {0, tonumber(oldest[2]) - t}
end
local ttl = tonumber(ARGV[6])
local expiresAt = t + ttl
redis.call('HSET', KEYS[1], ARGV[1], '{"e":' .. expiresAt .. ',"o":' .. ARGV[2] .. '}')
redis.call('ZADD', KEYS[2], expiresAt, ARGV[1])
local mine = redis.call('HGET', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], mine and (mine .. ' ' .. ARGV[1]) or ARGV[1])
for i = 1, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return {1, expiresAt}`;

/** KEYS: sessions, expiry, operators. ARGV: digest. → the stored session's JSON | nil (none, or it has expired: then it is ended). */
const getLua = `${HELPERS}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
if cjson.decode(raw).e <= now() then
  drop(ARGV[1])
  return false
end
return raw`;

/** KEYS: sessions, expiry, operators. ARGV: digest. */
const endLua = `${HELPERS}
drop(ARGV[1])
return 1`;

type Keys = [string, string, string];
type Scripted = RedisClient & {
  kgConsoleCreate(...args: [...Keys, string, string, string, number, number, number]): Promise<[number, number]>;
  kgConsoleGet(...args: [...Keys, string]): Promise<string | null>;
  kgConsoleEnd(...args: [...Keys, string]): Promise<number>;
};

const digestOf = (id: string): string => createHash('sha256').update(id).digest('hex');

/** A Redis failure on a console call is the store's: answered 503 `store_unavailable`, logged with the operation. */
async function storeCall<T>(op: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw new StoreUnavailableError(new StoreError(op, err));
  }
}

export class RedisConsoleSessions implements ConsoleSessions {
  readonly #r: Scripted;
  readonly #keys: Keys;
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #perOperator: number;

  constructor(redis: RedisClient, prefix: string, opts: ConsoleSessionBounds) {
    redis.defineCommand('kgConsoleCreate', { numberOfKeys: 3, lua: createLua });
    redis.defineCommand('kgConsoleGet', { numberOfKeys: 3, lua: getLua });
    redis.defineCommand('kgConsoleEnd', { numberOfKeys: 3, lua: endLua });
    this.#r = redis as Scripted;
    this.#keys = [`${prefix}{console}:sessions`, `${prefix}{console}:expiry`, `${prefix}{console}:operators`];
    this.#ttlMs = opts.ttlSeconds * 1000;
    this.#max = opts.max;
    this.#perOperator = opts.perOperator;
  }

  async create(operator: Operator): Promise<{ id: string; maxAgeSeconds: number }> {
    const id = newSessionId();
    const stored: Operator = { name: operator.name, role: operator.role, named: operator.named, credential: operator.credential };
    const [made, ms] = await storeCall('consoleSignIn', () => this.#r.kgConsoleCreate(...this.#keys, digestOf(id), JSON.stringify(stored), operator.name, this.#max, this.#perOperator, this.#ttlMs));
    if (made !== 1) throw sessionsFull(this.#max, Math.ceil(ms / 1000));
    return { id, maxAgeSeconds: this.#ttlMs / 1000 };
  }

  async get(id: string | undefined): Promise<Operator | null> {
    if (!id) return null;
    const raw = await storeCall('consoleSession', () => this.#r.kgConsoleGet(...this.#keys, digestOf(id)));
    if (raw === null) return null;
    const { name, role, named, credential } = (JSON.parse(raw) as { o: Operator }).o;
    return { name, role, named, credential };
  }

  async end(id: string | undefined): Promise<void> {
    if (!id) return;
    await storeCall('consoleSignOut', () => this.#r.kgConsoleEnd(...this.#keys, digestOf(id)));
  }
}
