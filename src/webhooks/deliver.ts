import { createHmac, randomBytes } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import type * as UndiciApi from 'undici';
import type { Agent } from 'undici';
import type { EndpointSecret } from './types.ts';

// Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` (unix seconds) and
// `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
// base64-decoded part of the `whsec_` secret; one signature per valid secret while a rotation is in progress.

export const newSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The signatures header: one per secret not yet expired. */
export function signatures(secrets: EndpointSecret[], id: string, timestamp: number, body: string, now = Date.now()): string {
  return secrets
    .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now)
    .map((s) => sign(s.secret, id, timestamp, body))
    .join(' ');
}

// Receivers are untrusted (SSRF): only global unicast addresses are allowed unless `webhooks.allowPrivateTargets`.
// ipaddr.js names the special-purpose ranges (IANA's registries: loopback, private, link-local, CGNAT, unique-local,
// multicast, unspecified, reserved, documentation, benchmarking, Teredo, ...); anything it names is refused. An
// IPv6 address that carries an IPv4 one is judged by the IPv4 address, since that is where it leads: an IPv4-mapped
// one (the socket connects to the IPv4 address), a NAT64 one of the well-known prefix (a NAT64 gateway connects to
// its last 32 bits) and a 6to4 one (a relay tunnels to bits 16-48). NAT64's local-use prefix is refused whole: where
// the IPv4 address sits in it depends on the operator's prefix length. Outside 2000::/3 IPv6 is unassigned, or
// IPv4-compatible (::a.b.c.d, deprecated), and refused.
const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const ipv4Of = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);

export function isPrivateAddress(address: string): boolean {
  if (isIP(address) === 0) return true;
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.parse(address);
  } catch {
    return true; // a form Node takes and ipaddr.js does not read (runs in the lookup callback: never throw there)
  }
  if (ip.kind() === 'ipv4') return ip.range() !== 'unicast';
  const v6 = ip as ipaddr.IPv6;
  const p = v6.parts;
  switch (v6.range()) {
    case 'ipv4Mapped':
      return ipv4Of(p[6]!, p[7]!).range() !== 'unicast';
    case 'rfc6052':
      return !v6.match(NAT64_WELL_KNOWN) || ipv4Of(p[6]!, p[7]!).range() !== 'unicast';
    case '6to4':
      return ipv4Of(p[1]!, p[2]!).range() !== 'unicast';
    case 'unicast':
      return !v6.match(GLOBAL_UNICAST);
    default:
      return true;
  }
}

export class BlockedTargetError extends Error {
  readonly code = 'EWEBHOOKBLOCKED';
}

/**
 * What a failed attempt says, from a closed set: the text goes to the endpoint's owner (its delivery log), so it
 * never names an address, a port or what a name resolves to — "vm resolves to 127.0.0.1" would tell a tenant
 * what keygate's internal names point at. A blocked target and a name that resolves to a private address read
 * the same.
 */
export const ATTEMPT_ERRORS = {
  blocked: 'blocked: the address is not allowed',
  refused: 'refused: the receiver refused the connection',
  unresolved: 'unresolved: the name could not be resolved',
  unreachable: 'unreachable: the receiver could not be reached',
  timeout: 'timeout: no answer within webhooks.timeoutMs',
  reset: 'reset: the connection closed before an answer',
  tls: 'tls: the TLS handshake with the receiver failed',
  other: 'error: the delivery failed',
} as const;

const ERROR_OF_CODE: Record<string, keyof typeof ATTEMPT_ERRORS> = {
  ECONNREFUSED: 'refused',
  ENOTFOUND: 'unresolved',
  EAI_AGAIN: 'unresolved',
  EAI_NODATA: 'unresolved',
  EAI_FAIL: 'unresolved',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  TimeoutError: 'timeout',
  AbortError: 'timeout',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
};

function attemptError(err: unknown): string {
  const e = err as Error & { code?: string; cause?: Error & { code?: string } };
  if (err instanceof BlockedTargetError || e.cause instanceof BlockedTargetError) return ATTEMPT_ERRORS.blocked;
  for (const code of [e.code, e.name, e.cause?.code, e.cause?.name]) {
    if (!code) continue;
    const known = ERROR_OF_CODE[code];
    if (known) return ATTEMPT_ERRORS[known];
    if (/^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/.test(code)) return ATTEMPT_ERRORS.tls;
  }
  return ATTEMPT_ERRORS.other;
}

/**
 * The address check runs in the connection's own DNS lookup, so the address checked is the address connected
 * to (a name that resolves to a public address for a check and to a private one for the connection — DNS
 * rebinding — cannot get through).
 */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, '', 0);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) return callback(new BlockedTargetError(), '', 0);
    if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};

export interface DeliveryOptions {
  timeoutMs: number;
  maxResponseBytes: number;
  allowPrivateTargets: boolean;
}

export interface AttemptResult {
  status: number | null;
  ok: boolean;
  latencyMs: number;
  error: string | null;
}

// undici's full API (its Agent and `request`, fetch and the rest come with them) is loaded with the first delivery,
// not at start: most replicas never deliver one (an idle sidecar's memory).
let undici: Promise<typeof UndiciApi> | null = null;

/** One HTTP POST to a receiver: never follows a redirect, reads at most `maxResponseBytes`, bounded in time. */
export class Deliverer {
  #agent: Promise<Agent> | null = null;
  #closed = false;
  readonly #opts: DeliveryOptions;

  constructor(opts: DeliveryOptions) {
    this.#opts = opts;
  }

  /** The connection pool for every receiver, made on the first delivery (closed at once if close() came first). */
  #agentOf(Undici: typeof UndiciApi): Promise<Agent> {
    return (this.#agent ??= (async () => {
      const { timeoutMs, allowPrivateTargets } = this.#opts;
      const connector = Undici.buildConnector(allowPrivateTargets ? { timeout: timeoutMs } : { timeout: timeoutMs, lookup: guardedLookup });
      // undici's connect timer ticks once a second, and an aborted request waits for its connection: a receiver
      // that stalls the TCP or TLS handshake held an attempt up to a second past timeoutMs. This timer is exact.
      const connect: UndiciApi.buildConnector.connector = (opts, callback) => {
        const timer = setTimeout(() => socket?.destroy(new Undici.errors.ConnectTimeoutError()), timeoutMs);
        // The connector returns the socket it is connecting (its type says void).
        const socket = connector(opts, (...args) => {
          clearTimeout(timer);
          callback(...args);
        }) as unknown as Socket | undefined;
      };
      const agent = new Undici.Agent({
        connect,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        keepAliveTimeout: 4_000,
      });
      if (this.#closed) await agent.close();
      return agent;
    })());
  }

  async post(url: string, headers: Record<string, string>, body: string): Promise<AttemptResult> {
    const started = performance.now();
    const done = (status: number | null, error: string | null): AttemptResult => ({
      status,
      ok: error === null && status !== null && status >= 200 && status < 300,
      latencyMs: Math.round((performance.now() - started) * 10) / 10,
      error,
    });
    try {
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      // An address in the URL is never looked up: checked here.
      if (!this.#opts.allowPrivateTargets && isIP(host) && isPrivateAddress(host)) {
        throw new BlockedTargetError();
      }
      const Undici = await (undici ??= import('undici'));
      const res = await Undici.request(url, {
        method: 'POST',
        dispatcher: await this.#agentOf(Undici),
        headers: { 'content-type': 'application/json', 'user-agent': 'keygate-webhooks', ...headers },
        body,
        signal: AbortSignal.timeout(this.#opts.timeoutMs),
      });
      let read = 0;
      for await (const chunk of res.body) {
        read += (chunk as Buffer).length;
        if (read > this.#opts.maxResponseBytes) {
          res.body.destroy();
          break;
        }
      }
      // A redirect is an answer like any other non-2xx: not followed.
      return done(res.statusCode, null);
    } catch (err) {
      return done(null, attemptError(err));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await (await this.#agent)?.close();
  }
}
