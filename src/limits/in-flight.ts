import type { Config } from '../config/schema.ts';

/**
 * Upstream requests in flight per tenant (`maxInFlight`), so that one tenant cannot hold every upstream
 * connection and starve the others. Counted per process, as Envoy's circuit breakers are: with N replicas a
 * tenant may hold up to N × its plan's maxInFlight in all. Only tenants with a request in flight have an entry,
 * so the map is bounded by the requests in flight.
 */
export class InFlight {
  readonly #counts = new Map<string, number>();
  /** Plan name → maxInFlight; a plan without a cap has no entry. */
  readonly #caps = new Map<string, number>();

  constructor(plans: Config['plans']) {
    for (const [name, plan] of Object.entries(plans)) if (plan.maxInFlight !== null) this.#caps.set(name, plan.maxInFlight);
  }

  /** Whether the tenant already holds its plan's maxInFlight requests. */
  full(tenantId: string, plan: string): boolean {
    const cap = this.#caps.get(plan);
    return cap !== undefined && (this.#counts.get(tenantId) ?? 0) >= cap;
  }

  take(tenantId: string): void {
    this.#counts.set(tenantId, (this.#counts.get(tenantId) ?? 0) + 1);
  }

  release(tenantId: string): void {
    const left = (this.#counts.get(tenantId) ?? 1) - 1;
    if (left > 0) this.#counts.set(tenantId, left);
    else this.#counts.delete(tenantId);
  }
}
