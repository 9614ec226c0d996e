/** One row of `GET /keygate/v1/usage` (SPEC §3). */
export interface UsageRow {
  period: string;
  requests: number;
  allowed: number;
  denied: number;
  rateLimited: number;
}

export interface UsageQuery {
  granularity: 'day' | 'month';
  from?: string | undefined;
  to?: string | undefined;
  keyId?: string | undefined;
}

export interface Overview {
  tenants: number;
  keys: number;
  requestsToday: number;
}

/** What the management APIs read from the usage counters (implemented in limits/usage.ts). */
export interface UsageReader {
  read(tenantId: string, query: UsageQuery): Promise<UsageRow[]>;
  overview(): Promise<Overview>;
}
