import { LRUCache } from 'lru-cache';
import type { RecentBlocks } from '../limits/recent-blocks.ts';
import type { DecisionRing } from '../ops/decision-ring.ts';
import type { KeyStore } from '../store/types.ts';
import type { WebhookQueue } from '../webhooks/types.ts';

/** Tenants read to rank the top ones: beyond this many the ranking covers the first ones only (`truncated`). */
const TENANT_SCAN = 10_000;
const TOP = 10;
/**
 * How long the top-tenants ranking is reused: it reads every tenant's daily counters (up to TENANT_SCAN), which
 * the usage flush changes every few seconds anyway; concurrent console views share one scan.
 */
const TOP_TENANTS_TTL_MS = 5_000;

type TopTenants = { data: Array<{ id: string; name: string; plan: string; status: string; requestsToday: number }>; scanned: number; truncated: boolean };

/** The console's fleet view (`GET /admin/v1/fleet`). */
export interface FleetReader {
  read(): Promise<unknown>;
}

export interface FleetDeps {
  store: KeyStore;
  webhooks: WebhookQueue | null;
  ring: DecisionRing;
  blocks: RecentBlocks;
  /** The readiness report's body (its Redis check is the console's Redis status). */
  readiness: () => Promise<{ body: object }>;
  now?: () => number;
}

/**
 * The console's fleet view, each figure from where it is kept: decisions per minute from this process's ring
 * (ops/decision-ring.ts), top tenants from today's stored usage counters (every replica's flushed counts),
 * blocked addresses from this process's recent blocks, webhook health and dead letters from the delivery
 * queue, Redis from the readiness check.
 */
export function createFleetReader(deps: FleetDeps): FleetReader {
  const now = deps.now ?? Date.now;
  const scanTopTenants = async (): Promise<TopTenants> => {
    const today = new Date(now()).toISOString().slice(0, 10);
    const ranked: Array<{ id: string; name: string; plan: string; status: string; requestsToday: number }> = [];
    let cursor: string | null = null;
    let scanned = 0;
    do {
      const page = await deps.store.listTenants({ limit: 100, cursor });
      const counts = await Promise.all(page.data.map((t) => deps.store.readUsage(t.id, [today], null)));
      page.data.forEach((t, i) => {
        const c = counts[i]!.get(today)!;
        const requests = c.allowed + c.denied + c.rateLimited;
        if (requests > 0) ranked.push({ id: t.id, name: t.name, plan: t.plan, status: t.status, requestsToday: requests });
      });
      scanned += page.data.length;
      cursor = page.nextCursor;
    } while (cursor && scanned < TENANT_SCAN);
    ranked.sort((a, b) => b.requestsToday - a.requestsToday);
    return { data: ranked.slice(0, TOP), scanned, truncated: cursor !== null };
  };
  // One entry (the ranking), fetched at most once at a time and kept TOP_TENANTS_TTL_MS.
  const cache = new LRUCache<'top', TopTenants>({ max: 1, ttl: TOP_TENANTS_TTL_MS, fetchMethod: scanTopTenants, perf: { now } });
  const topTenants = async (): Promise<TopTenants> => (await cache.fetch('top'))!;
  const webhooks = async () => {
    const q = deps.webhooks;
    if (!q) return { enabled: false, endpoints: 0, failing: 0, disabled: 0, deadLetters: 0 };
    const [endpoints, health, dead] = await Promise.all([q.listEndpoints(), q.health(), q.deadLetterCount()]);
    let failing = 0;
    let disabled = 0;
    for (const e of endpoints) {
      const h = health.get(e.id);
      if (h?.disabledAt) disabled++;
      else if (h?.failingSince) failing++;
    }
    return { enabled: true, endpoints: endpoints.length, failing, disabled, deadLetters: dead };
  };
  return {
    async read() {
      const [top, hooks, ready] = await Promise.all([topTenants(), webhooks(), deps.readiness()]);
      const checks = (ready.body as { checks?: { redis?: unknown } }).checks;
      return {
        generatedAt: new Date(now()).toISOString(),
        store: deps.store.kind,
        redis: checks?.redis ?? null,
        decisionsPerMinute: deps.ring.read(),
        topTenants: top,
        blockedAddresses: deps.blocks.read(),
        webhooks: hooks,
      };
    },
  };
}
