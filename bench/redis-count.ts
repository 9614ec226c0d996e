// Counts the Redis commands keygate sends, with MONITOR on every master, and says what each was for: work a
// request caused (a lookup on a cache miss or expiry, a rate-limit or quota lease, a failed-attempt count) or
// background work whose cost does not follow the request count (usage and lastUsedAt flushes, the key cache's
// batched refresh, connection upkeep). Used by bench/run.ts (the steady-state Redis figures) and
// bench/redis-commands.ts. Not a timing benchmark: it counts.
//
// A command is what a client sent: one EVALSHA is one command, whatever the script runs inside Redis (MONITOR
// shows those apart, as source "lua"; they are left out here, and INFO commandstats counts them).
import { Redis } from 'ioredis';

export interface Command {
  at: number;
  name: string;
  /** The first key (or, for MGET, the first of its keys). */
  key: string;
  /** Keys named by an MGET (what a refresh reads). */
  keys: number;
  /** EVALSHA: the script's name, when `monitorAll` was given the script's SHA-1. */
  script?: string;
}

export type Kind = 'request' | 'background';

/** What a command was for, and whether a request or background work sent it. */
export function classify(c: Command): { kind: Kind; cause: string } {
  const { name, key } = c;
  if (name === 'EVALSHA' || name === 'EVAL') {
    if (/:rl:m\d+:/.test(key)) return { kind: 'request', cause: 'rate-limit lease, per-minute window' };
    if (/:rl:d\d+:/.test(key)) return { kind: 'request', cause: 'rate-limit lease, per-day window' };
    if (/:q:\d{4}-\d{2}:r:/.test(key)) return { kind: 'request', cause: 'monthly quota lease' };
    if (/fail:/.test(key)) return { kind: 'request', cause: 'failed-attempt count' };
    if (/:q:\d{4}-\d{2}:s:|:ws(:|$)/.test(key)) return { kind: 'request', cause: 'WebSocket session slot or minutes' };
    if (/(^|:)u:\d{4}-\d{2}/.test(key)) return { kind: 'background', cause: 'usage flush (one script call per tenant, period and 1,000 keys)' };
    if (key.includes('{webhooks}')) return { kind: 'background', cause: 'webhooks' };
    return { kind: 'request', cause: `script on ${key}` };
  }
  if (name === 'GET' && key.includes('vr:')) return { kind: 'request', cause: 'lookup: verification record (cache miss or expired entry)' };
  if (name === 'MGET' && /:k:/.test(key)) return { kind: 'request', cause: 'lookup: key and tenant records (cache miss or expired entry)' };
  if (name === 'MGET' && key.includes('vr:')) return { kind: 'background', cause: 'cache refresh: verification records (one MGET per batch)' };
  if (name === 'MGET' && /:t$/.test(key)) return { kind: 'background', cause: 'cache refresh: tenant and key records (one MGET per tenant and batch)' };
  if (name === 'HSET' && key.endsWith(':lu')) return { kind: 'background', cause: 'lastUsedAt flush (one HSET per tenant and 1,000 keys)' };
  if (['PING', 'INFO', 'CLUSTER', 'CLIENT', 'SCRIPT', 'HELLO', 'READONLY', 'SUBSCRIBE', 'SELECT'].includes(name)) return { kind: 'background', cause: 'connection upkeep' };
  return { kind: 'request', cause: name };
}

/** MONITOR on every master: the commands clients sent (not those run inside scripts); `scripts` names SHA-1s. */
export async function monitorAll(ports: number[], scripts: Map<string, string> = new Map()): Promise<{ seen: Command[]; stop(): void }> {
  const seen: Command[] = [];
  const clients = ports.map((port) => new Redis({ port, host: '127.0.0.1', lazyConnect: true }));
  const monitors = await Promise.all(clients.map((c) => c.monitor()));
  for (const m of monitors) {
    m.on('monitor', (_time: string, args: string[], source: string) => {
      if (source === 'lua') return;
      const name = args[0]!.toUpperCase();
      if (name === 'MONITOR') return;
      const key = name === 'EVALSHA' || name === 'EVAL' ? (args[3] ?? '') : (args[1] ?? '');
      const script = name === 'EVALSHA' ? scripts.get(args[1]!) : undefined;
      seen.push({ at: Date.now(), name, key, keys: name === 'MGET' ? args.length - 1 : 0, ...(script ? { script } : {}) });
    });
  }
  return {
    seen,
    stop: () => {
      for (const m of monitors) m.disconnect();
      for (const c of clients) c.disconnect();
    },
  };
}

export interface Tally {
  requests: number;
  seconds: number;
  /** Commands that requests caused, per request, and by cause. */
  perRequest: number;
  requestCauses: Record<string, number>;
  /** Background commands in the window: in all, per second, and by cause (counts). */
  background: number;
  backgroundPerSecond: number;
  backgroundCauses: Record<string, number>;
  /** Records the cache refresh read (keys named by its MGETs). */
  refreshKeysRead: number;
  /** Every command sent, background included, per request. */
  allPerRequest: number;
  /** INFO commandstats over the window, per request: every command Redis ran, those inside scripts too. */
  commandstatsPerRequest?: number;
  /** The distinct keys the load used, its rate and keygate's CPU per request (set by the caller). */
  distinctKeys?: number;
  rps?: number;
  cpuUsPerRequest?: number;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function tally(seen: Command[], requests: number, seconds: number): Tally {
  const req = new Map<string, number>();
  const bg = new Map<string, number>();
  let refreshKeysRead = 0;
  let own = 0;
  let background = 0;
  for (const c of seen) {
    if (c.name === 'INFO') continue; // the bench's own
    const { kind, cause } = classify(c);
    const into = kind === 'request' ? req : bg;
    into.set(cause, (into.get(cause) ?? 0) + 1);
    if (kind === 'request') own++;
    else background++;
    if (cause.startsWith('cache refresh')) refreshKeysRead += c.keys;
  }
  const sorted = (m: Map<string, number>, f: (n: number) => number) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, f(v)]));
  return {
    requests,
    seconds: round(seconds, 1),
    perRequest: round(own / Math.max(1, requests), 4),
    requestCauses: sorted(req, (v) => round(v / Math.max(1, requests), 4)),
    background,
    backgroundPerSecond: round(background / seconds, 2),
    backgroundCauses: sorted(bg, (v) => v),
    refreshKeysRead,
    allPerRequest: round((own + background) / Math.max(1, requests), 4),
  };
}

/** Every command Redis ran so far (INFO commandstats, in-script commands included), summed over `ports`. */
async function commandstats(ports: number[]): Promise<number> {
  let sum = 0;
  for (const port of ports) {
    const c = new Redis({ port, host: '127.0.0.1' });
    sum += [...(await c.info('commandstats')).matchAll(/calls=(\d+)/g)].reduce((a, x) => a + Number(x[1]), 0);
    c.disconnect();
  }
  return sum;
}

/** Runs `work` (which returns the number of requests it made) with MONITOR on, and tallies what was sent. */
export async function counted(ports: number[], work: () => Promise<number>): Promise<Tally> {
  const m = await monitorAll(ports);
  await new Promise((r) => setTimeout(r, 50));
  const before = await commandstats(ports);
  const t0 = performance.now();
  const requests = await work();
  const seconds = (performance.now() - t0) / 1000;
  const after = await commandstats(ports);
  await new Promise((r) => setTimeout(r, 100));
  m.stop();
  // The INFO itself: one per port, and the ones MONITOR saw from the bench (left out of the tally already).
  return { ...tally(m.seen, requests, seconds), commandstatsPerRequest: round((after - before - ports.length) / Math.max(1, requests), 4) };
}
