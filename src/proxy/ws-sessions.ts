import type { Pipeline, RequestHead } from '../auth/pipeline.ts';
import { refuse, reverify, type Identity } from '../auth/verify.ts';
import type { KeyCache } from '../cache/key-cache.ts';
import type { ErrorCode } from '../http/errors.ts';
import type { Target } from '../http/target.ts';
import type { SessionMeter, SessionQuota } from '../limits/session-quota.ts';
import type { SessionSlots } from '../limits/sessions.ts';
import type { MeteredSession, Usage } from '../limits/usage.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { StoreEvent } from '../store/types.ts';
import { splice, type Carried, type Splice, type SpliceEnd, type Taken } from './ws-splice.ts';

// Live WebSocket sessions: spliced both ways (ws-splice.ts: 1009 for an oversized message, 1002 for a frame
// a side may not send); closed with 1008 when the key is revoked, disabled, expires or is changed so that it may
// no longer open the session, or when its key's or tenant's session minutes run out (`quota_exceeded`), with 1001
// at shutdown. Each session's slot lease is renewed while it lives and released when it ends; its time is
// metered in usage.

export interface Session {
  id: string;
  /** What the re-checks read of the upgrade request (not the request itself: its parser state and raw headers go). */
  head: RequestHead;
  /** The canonical target the upgrade was authorised on (http/target.ts), re-checked when the key changes. */
  target: Target;
  identity: Identity;
  /** Each side's connection, as `ws` handed it over past the handshake. */
  client: Taken;
  upstream: Taken;
  /** ms since epoch when the key or the presented value stops being valid; null for never. */
  expiresAt: number | null;
  /**
   * The session's share of its key's and tenant's monthly minutes; null when no quota applies. Closed when the
   * session ends (a re-metering closes the one it replaces).
   */
  meter: SessionMeter | null;
  /** Called once when the session ends, with how it ended and what it carried (the session's line and span). */
  ended: (end: SessionEnd) => void;
}

/** How a session ended and what it carried each way. */
export interface SessionEnd {
  durationMs: number;
  closeCode: number;
  closeReason: string;
  closedBy: 'client' | 'upstream' | 'keygate';
  client: Carried;
  upstream: Carried;
}

/** A live session's own state, beside what it was opened with. */
interface Live extends Session {
  /** Its time in usage, counted until it ends. */
  metered: MeteredSession;
  startedAt: number;
  relay: Splice;
}

const CLOSE_REASON: Partial<Record<ErrorCode, string>> = {
  invalid_api_key: 'key_revoked',
  key_disabled: 'key_disabled',
  key_expired: 'key_expired',
  tenant_suspended: 'tenant_suspended',
};

const unknownKey = refuse('invalid_api_key', 'The API key is not valid.');

/** When a session must end: the key's expiry or the end of the presented value's rotation grace, whichever is first. */
export function expiryOf(identity: Identity): number | null {
  const { expiresAt } = identity.key;
  const { hashExpiresAt } = identity;
  if (expiresAt === null) return hashExpiresAt;
  return hashExpiresAt === null ? expiresAt : Math.min(expiresAt, hashExpiresAt);
}

export interface SessionDeps {
  pipeline: Pipeline;
  cache: KeyCache;
  slots: SessionSlots;
  usage: Usage;
  sessionQuota: SessionQuota;
  revalidateSeconds: number;
  /** The largest message either side may send. */
  maxPayloadBytes: number;
  /** A side silent this long is pinged; one silent (not even a pong) for the idle timeout is taken for gone. */
  pingIntervalSeconds: number;
  idleTimeoutSeconds: number;
  metrics: Metrics;
}

export function createSessions(deps: SessionDeps) {
  const { metrics } = deps;
  const sessions = new Map<string, Live>();
  // Whole milliseconds: the splice adds up ping intervals until they reach the idle timeout, and 16.1 * 1000 is a
  // hair over 16100: 23 intervals of 0.7 s would fall short of it, and a silent side would get a 24th.
  const spliceOptions = { maxPayload: deps.maxPayloadBytes, pingIntervalMs: Math.round(deps.pingIntervalSeconds * 1000), idleTimeoutMs: Math.round(deps.idleTimeoutSeconds * 1000) };

  // The upstream is told a key's refusal (1008) as a normal close: the reason is the client's business.
  function close(session: Live, code: number, reason: string): void {
    if (!sessions.delete(session.id)) return;
    session.relay.close(code, code === 1008 ? 1000 : code, reason);
  }

  /**
   * The session is over (either side closed): its count, its time, its slot and unused reserved minutes go back,
   * and its end is reported. Called once per session: the splice reports its end once.
   */
  function end(session: Live, how: SpliceEnd): void {
    sessions.delete(session.id);
    metrics.websockets.dec();
    session.metered.close();
    const { identity } = session;
    void deps.slots.release(identity.tenant.id, identity.key.id, session.id).catch(() => {});
    session.meter?.close(Date.now());
    session.ended({
      durationMs: Math.round((performance.now() - session.startedAt) * 1e3) / 1e3,
      closeCode: how.code,
      closeReason: how.reason,
      closedBy: how.closedBy,
      client: session.relay.fromClient,
      upstream: session.relay.fromUpstream,
    });
  }

  /** Starts relaying a session whose both handshakes are complete; from now on it owns its slot and its meter. */
  function start(opened: Session): void {
    const session = {
      ...opened,
      metered: deps.usage.openSession(opened.identity.tenant.id, opened.identity.key.id),
      startedAt: performance.now(),
    } as Omit<Live, 'relay'> as Live;
    sessions.set(session.id, session);
    metrics.websockets.inc();
    session.relay = splice(opened.client, opened.upstream, spliceOptions, (how) => end(session, how));
    // A key change while the upstream was being dialled found no session to re-check: check once now (a cache
    // hit, unless the key did change).
    void revalidate([session]);
  }

  /**
   * Re-checks sessions against the store (the cache entry was just evicted, so this reads fresh state): the
   * key's status, then everything the upgrade passed after it (mTLS, origin, route permission, assistant).
   */
  async function revalidate(targets: Live[]): Promise<void> {
    await Promise.all(
      targets.map(async (s) => {
        let v;
        try {
          v = await deps.cache.get(s.identity.hash);
        } catch {
          return; // Store unreachable: live sessions continue, as cached keys do.
        }
        const fresh = v ? reverify(v, s.identity, Date.now()) : unknownKey;
        const refusal = fresh.ok ? deps.pipeline.recheck(s.head, fresh, s.target) : fresh;
        if (refusal) return close(s, 1008, CLOSE_REASON[refusal.code] ?? refusal.code);
        if (!fresh.ok) return;
        s.expiresAt = expiryOf(fresh);
        // Its session minutes too: a key capped (or re-capped) while the session runs is metered from now on.
        let next: Awaited<ReturnType<SessionQuota['remeter']>>;
        try {
          next = await deps.sessionQuota.remeter(fresh, s.id, s.meter);
        } catch {
          return; // the store cannot answer: the running meter stays
        }
        if (next === 'same') return;
        if (next !== null && 'refused' in next) {
          s.meter = null;
          close(s, 1008, 'quota_exceeded');
        } else s.meter = next;
      }),
    );
  }

  // Expiry and session minutes are checked locally every second; the lease renewal and a slower store re-check
  // run alongside.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const s of sessions.values()) {
      if (s.expiresAt !== null && s.expiresAt <= now) close(s, 1008, 'key_expired');
      else if (s.meter?.tick(now)) close(s, 1008, 'quota_exceeded');
    }
  }, 1_000);
  ticker.unref();
  const renewer = setInterval(() => {
    const live = [...sessions.values()].map((s) => ({ tenantId: s.identity.tenant.id, keyId: s.identity.key.id, sessionId: s.id }));
    if (live.length) void deps.slots.renew(live).catch(() => {});
  }, 20_000);
  renewer.unref();
  const sweeper = setInterval(() => void revalidate([...sessions.values()]), deps.revalidateSeconds * 1000);
  sweeper.unref();

  return {
    start,
    get size() {
      return sessions.size;
    },
    /** Called for every store mutation event, after the cache has applied it. */
    onEvent(event: StoreEvent): void {
      const affected = [...sessions.values()].filter((s) =>
        event.kind === 'key' ? s.identity.key.id === event.keyId : s.identity.tenant.id === event.tenantId,
      );
      if (affected.length) void revalidate(affected);
    },
    onReset(): void {
      void revalidate([...sessions.values()]);
    },
    /** Shutdown: every session gets 1001 (going away). */
    closeAll(): void {
      clearInterval(ticker);
      clearInterval(renewer);
      clearInterval(sweeper);
      const now = Date.now();
      for (const s of [...sessions.values()]) {
        s.meter?.close(now); // while Redis is still open: the unused reservation goes back
        close(s, 1001, 'shutting_down');
      }
    },
  };
}
