import { z } from 'zod';

// Every option keygate understands. Defaults live here; `config/default.yaml` documents them and a unit
// test keeps the two in step.

const port = z.number().int().min(0).max(65535);
const limitPair = z.strictObject({
  default: z.number().int().positive().nullable(),
  max: z.number().int().positive().nullable(),
});

export const planSchema = z.strictObject({
  maxKeys: z.number().int().positive(),
  requestsPerMinute: limitPair,
  requestsPerDay: limitPair,
  maxConcurrentConnections: limitPair,
  /** Monthly quotas (calendar month, UTC): the key's default and maximum; the max also caps the tenant's keys together. */
  requestsPerMonth: limitPair.default({ default: null, max: null }),
  sessionMinutesPerMonth: limitPair.default({ default: null, max: null }),
  /** Upstream requests a tenant may have in flight at once, per replica; null = no cap. */
  maxInFlight: z.number().int().positive().nullable().default(null),
});

const cidrList = z.array(z.string().min(1)).default([]);

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port.default(8080),
      opsHost: z.string().default('127.0.0.1'),
      opsPort: port.default(9090),
      trustedProxies: cidrList,
      maxBodyBytes: z.number().int().positive().default(16 * 1024),
      managementBodyTimeoutMs: z.number().int().positive().default(10_000),
      maxAssistantBodyBytes: z.number().int().positive().default(64 * 1024),
      // The authorizer listener (src/authz/): off unless a port is given.
      authzHost: z.string().default('0.0.0.0'),
      authzPort: port.nullable().default(null),
      // Worker processes on the same ports (src/server/workers.ts): a count, or 'auto' for the cores the
      // process may use. More than one needs Redis: limits and revocations are shared through the store.
      workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default(1),
    })
    .prefault({}),
  upstream: z
    .strictObject({
      // A user or password in the URL would be printed (the start-up line, `config check`, trace attributes) and
      // sent on WebSocket dials only, never on HTTP requests: refused, so no one relies on it.
      url: z
        .url({ protocol: /^https?$/ })
        .refine((u) => URL.canParse(u) && new URL(u).username === '' && new URL(u).password === '', 'must not hold a user or password: keygate never sends them to the upstream')
        .default('http://127.0.0.1:3000'),
      timeoutMs: z.number().int().positive().default(30_000),
      maxSockets: z.number().int().positive().default(256),
      maxQueue: z.number().int().min(0).default(1024),
      signingSecret: z.string().min(16).nullable().default(null),
      preserveHost: z.boolean().default(false),
      tls: z
        .strictObject({
          ca: z.string().min(1).nullable().default(null),
          cert: z.string().min(1).nullable().default(null),
          key: z.string().min(1).nullable().default(null),
        })
        .prefault({}),
    })
    .prefault({}),
  redis: z
    .strictObject({
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
        .nullable()
        .default(null),
      sentinels: z.array(z.strictObject({ host: z.string(), port })).nullable().default(null),
      sentinelName: z.string().default('mymaster'),
      clusterNodes: z.array(z.string().regex(/^rediss?:\/\//)).nullable().default(null),
      keyPrefix: z.string().regex(/^[A-Za-z0-9_:.-]*$/).default('kg:'),
      commandTimeoutMs: z.number().int().positive().default(500),
      channel: z.string().min(1).default('keygate:invalidate'),
    })
    .prefault({}),
  keys: z
    .strictObject({
      privatePrefix: z.string().regex(/^[A-Za-z0-9_]{2,16}$/).default('kg_sk_'),
      publicPrefix: z.string().regex(/^[A-Za-z0-9_]{2,16}$/).default('kg_pk_'),
      pepper: z.string().min(16).nullable().default(null),
      allowedExpiryDays: z.array(z.number().int().positive()).min(1).default([30, 60, 90, 180]),
      defaultExpiryDays: z.number().int().positive().nullable().default(90),
      allowNeverExpire: z.boolean().default(false),
      maxGracePeriodSeconds: z.number().int().min(0).max(7 * 86_400).default(7 * 86_400),
    })
    .prefault({}),
  plans: z.record(z.string().regex(/^[a-z0-9_-]+$/), planSchema).default({
    free: {
      maxKeys: 3,
      requestsPerMinute: { default: 60, max: 600 },
      requestsPerDay: { default: 10_000, max: 100_000 },
      maxConcurrentConnections: { default: 2, max: 10 },
      requestsPerMonth: { default: 100_000, max: 1_000_000 },
      sessionMinutesPerMonth: { default: 1_000, max: 10_000 },
      maxInFlight: 32,
    },
    pro: {
      maxKeys: 25,
      requestsPerMinute: { default: 600, max: 6_000 },
      requestsPerDay: { default: 500_000, max: 5_000_000 },
      maxConcurrentConnections: { default: 20, max: 200 },
      requestsPerMonth: { default: 10_000_000, max: 100_000_000 },
      sessionMinutesPerMonth: { default: 50_000, max: 500_000 },
      maxInFlight: 128,
    },
    enterprise: {
      maxKeys: 1_000,
      requestsPerMinute: { default: null, max: null },
      requestsPerDay: { default: null, max: null },
      maxConcurrentConnections: { default: null, max: null },
      requestsPerMonth: { default: null, max: null },
      sessionMinutesPerMonth: { default: null, max: null },
      maxInFlight: null,
    },
  }),
  defaultPlan: z.string().default('free'),
  admin: z
    .strictObject({
      token: z.string().min(16).nullable().default(null),
      // Named operators (console and admin API): the token is stored as its SHA-256 (hex), never in clear.
      tokens: z
        .array(
          z.strictObject({
            name: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'letters, digits, . _ @ - (1..64)'),
            sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the hex SHA-256 of the token (64 lower-case hex digits)'),
            role: z.enum(['read', 'write']),
          }),
        )
        .max(1000)
        .default([])
        .refine((ops) => new Set(ops.map((o) => o.name)).size === ops.length, 'operator names must be unique'),
    })
    .prefault({}),
  console: z
    .strictObject({
      enabled: z.boolean().default(true),
      sessionTtlSeconds: z.number().int().min(60).max(86_400).default(1_800),
      maxSessions: z.number().int().min(1).max(100_000).default(1_000),
      /** Each operator's own bound: signing in beyond it ends that operator's oldest session, never another's. */
      maxSessionsPerOperator: z.number().int().min(1).max(100).default(5),
      origins: z.array(z.url()).default([]),
    })
    .prefault({}),
  tokens: z
    .strictObject({
      /**
       * Keys that sign session tokens: the first signs new tokens, every one listed verifies (rotate by adding a
       * new key first, and removing the old one once its tokens have expired, an hour at most). Empty: with the
       * embedded store a random key is made at start (tokens die with the process); with Redis, session tokens
       * are off, since every replica must verify what any of them signed.
       */
      signingKeys: z
        .array(z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and -, at most 32'), secret: z.string().min(32) }))
        .default([]),
      /** The longest lifetime a session token may be minted with, in seconds (10 to 3600). */
      maxTtlSeconds: z.number().int().min(10).max(3600).default(3600),
    })
    .prefault({}),
  cache: z
    .strictObject({
      maxEntries: z.number().int().positive().default(100_000),
      ttlSeconds: z.number().positive().default(30),
      negativeTtlSeconds: z.number().positive().default(5),
      staleIfErrorSeconds: z.number().min(0).default(300),
    })
    .prefault({}),
  limits: z
    .strictObject({
      failedAttempts: z
        .strictObject({
          maxFailures: z.number().int().positive().default(20),
          windowSeconds: z.number().int().positive().default(60),
          blockSeconds: z.number().int().positive().default(300),
        })
        .prefault({}),
    })
    .prefault({}),
  usage: z
    .strictObject({
      flushIntervalSeconds: z.number().positive().default(10),
      lastUsedFlushSeconds: z.number().positive().max(60).default(30),
    })
    .prefault({}),
  quotas: z
    .strictObject({
      sessionWarningSeconds: z.number().min(0).default(60),
      sessionGraceSeconds: z.number().min(0).default(0),
    })
    .prefault({}),
  websocket: z
    .strictObject({
      revalidateSeconds: z.number().positive().default(30),
      maxPayloadBytes: z.number().int().positive().max(1_073_741_824).default(1_048_576),
      pingIntervalSeconds: z.number().min(0.1).max(3_600).default(20),
      idleTimeoutSeconds: z.number().min(0.2).max(86_400).default(60),
    })
    .refine((w) => w.idleTimeoutSeconds > w.pingIntervalSeconds, { message: 'idleTimeoutSeconds must be longer than pingIntervalSeconds (a silent side is pinged before it is taken for gone)', path: ['idleTimeoutSeconds'] })
    .prefault({}),
  authz: z
    .strictObject({
      trustedGateways: cidrList,
      requestBody: z.boolean().default(false),
      websocket: z.enum(['refuse', 'handshake']).default('refuse'),
    })
    .prefault({}),
  policy: z.strictObject({ file: z.string().default('policy.yaml') }).prefault({}),
  audit: z.strictObject({ maxEntries: z.number().int().positive().default(10_000), refusalWindowSeconds: z.number().int().positive().default(3_600) }).prefault({}),
  webhooks: z
    .strictObject({
      enabled: z.boolean().default(false),
      allowPrivateTargets: z.boolean().default(false),
      timeoutMs: z.number().int().positive().default(10_000),
      maxResponseBytes: z.number().int().positive().default(65_536),
      pollIntervalMs: z.number().int().positive().default(500),
      claimIdleMs: z.number().int().positive().default(30_000),
      retryBaseMs: z.number().int().positive().default(5_000),
      retryMaxMs: z.number().int().positive().default(3_600_000),
      retryForHours: z.number().positive().default(24),
      deliveryLogEntries: z.number().int().positive().default(100),
      outboxMaxEntries: z.number().int().positive().default(1_000_000),
      maxEndpointsPerTenant: z.number().int().positive().default(10),
      maxPendingJobsPerTenant: z.number().int().positive().default(5_000),
      maxPendingJobsPerEndpoint: z.number().int().positive().default(1_000),
      maxDeadLettersPerTenant: z.number().int().positive().default(1_000),
      maxDeadLettersPerEndpoint: z.number().int().positive().default(500),
      deadLetterHours: z.number().positive().default(168),
      expiryScanSeconds: z.number().positive().default(300),
    })
    .prefault({}),
  logging: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      accessLog: z.boolean().default(true),
    })
    .prefault({}),
  tls: z
    .strictObject({
      cert: z.string().nullable().default(null),
      key: z.string().nullable().default(null),
      clientCa: z.string().nullable().default(null),
      trustXfccFrom: cidrList,
    })
    .prefault({}),
  metrics: z.strictObject({ tenantLabel: z.boolean().default(false) }).prefault({}),
  // OpenTelemetry traces (docs/tracing.md); the OTEL_* environment variables overlay these (config/otel-env.ts).
  tracing: z
    .strictObject({
      enabled: z.boolean().default(false),
      endpoint: z.url({ protocol: /^https?$/ }).default('http://localhost:4318/v1/traces'),
      headers: z.record(z.string().min(1), z.string()).default({}),
      serviceName: z.string().min(1).default('keygate'),
      sampler: z
        .strictObject({
          ratio: z.number().min(0).max(1).default(1),
          parentBased: z.boolean().default(true),
        })
        .prefault({}),
      trustedPeers: z.array(z.string().min(1)).nullable().default(null),
      maxQueueSize: z.number().int().positive().max(1_000_000).default(2048),
      exportDelayMs: z.number().int().positive().max(60_000).default(5000),
    })
    .prefault({}),
  readiness: z.strictObject({ requireStore: z.boolean().default(false) }).prefault({}),
  shutdown: z
    .strictObject({
      drainDelaySeconds: z.number().min(0).max(300).default(0),
      timeoutSeconds: z.number().positive().default(25),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type Plan = z.infer<typeof planSchema>;

// Paths whose values never appear in `config check` output or logs.
export const secretPaths = [
  'admin.token',
  'upstream.signingSecret',
  'keys.pepper',
  'redis.url',
  'redis.clusterNodes',
  'tracing.headers',
  'tokens.signingKeys',
] as const;
