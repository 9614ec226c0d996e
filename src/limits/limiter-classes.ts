import { createRequire } from 'node:module';
import type * as flexible from 'rate-limiter-flexible';

// rate-limiter-flexible's three classes keygate uses, from their own files: the package's entry point loads every
// limiter it ships (Cluster's, Mongo's, MySQL's, Postgres', DynamoDB's, Etcd's and the rest), about 0.4 MB of
// heap that a keygate would hold for as long as it runs (bench/README.md, "Memory"). They are the same classes the entry point exports (one module, one copy); a
// release that moves them fails at start, not silently.
const load = createRequire(import.meta.url);

export const RateLimiterMemory = load('rate-limiter-flexible/lib/RateLimiterMemory.js') as typeof flexible.RateLimiterMemory;
export type RateLimiterMemory = flexible.RateLimiterMemory;
export const RateLimiterRedis = load('rate-limiter-flexible/lib/RateLimiterRedis.js') as typeof flexible.RateLimiterRedis;
export type RateLimiterRedis = flexible.RateLimiterRedis;
export const RateLimiterRes = load('rate-limiter-flexible/lib/RateLimiterRes.js') as typeof flexible.RateLimiterRes;
export type RateLimiterRes = flexible.RateLimiterRes;
export type { RateLimiterAbstract } from 'rate-limiter-flexible';
