/** One row of `GET /keygate/v1/usage` (SPEC §3): requests, and proxied WebSocket sessions and their time. */
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

/** What the management APIs read from the usage counters (implemented in limits/usage.ts). */
export interface UsageReader {
  read(tenantId: string, query: UsageQuery): Promise<UsageRow[]>;
  overview(): Promise<Overview>;
  readKeys(tenantId: string, period: string, keyIds: string[]): Promise<Array<UsageRow & { keyId: string }>>;
}

/** The console's fleet view (`GET /admin/v1/fleet`), built in api/fleet.ts. */
export interface FleetReader {
  read(): Promise<unknown>;
}
