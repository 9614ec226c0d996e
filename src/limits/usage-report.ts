// The usage report's shapes: limits/usage.ts records the counters and reads them back in these; api/ serves
// them. They live here, beside the counters, so the recording layer never imports the API above it.

/** One row of `GET /keygate/v1/usage`: requests, and proxied WebSocket sessions and their time. */
export interface UsageRow {
  period: string;
  requests: number;
  allowed: number;
  denied: number;
  rateLimited: number;
  /** WebSocket sessions opened in the period. */
  sessions: number;
  /** Their time in the period (seconds, millisecond precision; a session spanning midnight is split). */
  sessionSeconds: number;
  /** The tenant's refusals in the period by error code, nonzero only (a tenant's rows; a key's have none). */
  refusals?: Record<string, number>;
}

export interface UsageQuery {
  granularity: 'hour' | 'day' | 'month';
  from?: string | undefined;
  to?: string | undefined;
  keyId?: string | undefined;
}

export interface Overview {
  tenants: number;
  keys: number;
  requestsToday: number;
  sessionsToday: number;
  sessionSecondsToday: number;
}

/** What the management APIs read from the usage counters (implemented in usage.ts). */
export interface UsageReader {
  read(tenantId: string, query: UsageQuery): Promise<UsageRow[]>;
  overview(): Promise<Overview>;
  readKeys(tenantId: string, period: string, keyIds: string[]): Promise<Array<UsageRow & { keyId: string }>>;
}
