import { describe, expect, it } from 'vitest';
import { createOperators } from '../../../src/api/operators.ts';
import { ConsoleSessions } from '../../../src/console/sessions.ts';
import { RecentBlocks } from '../../../src/limits/recent-blocks.ts';
import { DecisionRing } from '../../../src/ops/decision-ring.ts';
import { createHash } from 'node:crypto';

// The console's in-process state, each with its bound: sessions, the per-minute decision ring, recent blocks.

describe('console sessions', () => {
  const alice = { name: 'alice', role: 'write' as const, named: true };

  it('end at their absolute lifetime and at sign-out', () => {
    let now = 0;
    const sessions = new ConsoleSessions({ ttlSeconds: 60, max: 2, perOperator: 2, now: () => now });
    const a = sessions.create(alice).id;
    now = 30_000;
    expect(sessions.get(a)).toEqual(alice);
    now = 60_000;
    expect(sessions.get(a)).toBeNull();
    const c = sessions.create(alice).id;
    sessions.end(c);
    expect(sessions.get(c)).toBeNull();
    expect(sessions.size).toBe(0);
    expect(sessions.get(undefined)).toBeNull();
    expect(sessions.get('forged')).toBeNull();
  });

  it("end an operator's own oldest beyond their bound, and refuse rather than end another operator's at the global bound", () => {
    let now = 0;
    const bob = { name: 'bob', role: 'read' as const, named: true };
    const carol = { name: 'carol', role: 'read' as const, named: true };
    const sessions = new ConsoleSessions({ ttlSeconds: 60, max: 3, perOperator: 2, now: () => now });
    const [a1, a2, a3] = [sessions.create(alice).id, sessions.create(alice).id, sessions.create(alice).id];
    expect([sessions.get(a1), sessions.get(a2) !== null, sessions.get(a3) !== null]).toEqual([null, true, true]);
    now = 10_000;
    const b = sessions.create(bob).id;
    expect(sessions.size).toBe(3);
    expect(() => sessions.create(carol)).toThrow(expect.objectContaining({ code: 'concurrency_limit_reached', options: { headers: { 'Retry-After': 50 } } }));
    // Bob and alice, at their own bound or not, never end each other's sessions.
    sessions.create(alice);
    expect([sessions.get(a2), sessions.get(a3) !== null, sessions.get(b) !== null]).toEqual([null, true, true]);
    expect(() => sessions.create(bob)).toThrow(expect.objectContaining({ code: 'concurrency_limit_reached' }));
    // Expired sessions make room.
    now = 60_000;
    expect(sessions.create(carol).id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sessions.size).toBe(3);
  });

  it('have unguessable ids', () => {
    const sessions = new ConsoleSessions({ ttlSeconds: 60, max: 10, perOperator: 10 });
    const ids = new Set(Array.from({ length: 5 }, () => sessions.create(alice).id));
    expect(ids.size).toBe(5);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('operator tokens', () => {
  it('resolve the admin token and named tokens by their SHA-256, nothing else', () => {
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const of = createOperators('admin-token-0123456789', [{ name: 'bob', sha256: sha('bob-token-0123456789'), role: 'read' }]);
    expect(of('admin-token-0123456789')).toEqual({ name: 'admin', role: 'write', named: false });
    expect(of('bob-token-0123456789')).toEqual({ name: 'bob', role: 'read', named: true });
    expect(of(sha('bob-token-0123456789'))).toBeNull();
    expect(of('')).toBeNull();
  });
});

describe('decision ring', () => {
  it('counts decisions per minute by status and forgets minutes older than the ring', () => {
    let now = Date.parse('2026-11-22T10:00:30Z');
    const ring = new DecisionRing(3, () => now);
    ring.record('allowed');
    ring.record('invalid_api_key');
    ring.record('rate_limited');
    ring.record('quota_exceeded');
    ring.record('store_unavailable');
    ring.record('insufficient_permissions');
    ring.record('route_not_allowed');
    ring.record('something_new');
    now += 60_000;
    ring.record('allowed');
    const read = ring.read();
    expect(read.map((m) => m.at)).toEqual(['2026-11-22T09:59:00.000Z', '2026-11-22T10:00:00.000Z', '2026-11-22T10:01:00.000Z']);
    expect(read[1]!.counts).toEqual({ allowed: 1, 401: 1, 403: 1, 429: 2, 503: 1, other: 2 });
    expect(read[2]!.counts.allowed).toBe(1);
    now += 3 * 60_000;
    expect(ring.read().every((m) => Object.values(m.counts).every((c) => c === 0))).toBe(true);
    ring.record('allowed');
    expect(ring.read().at(-1)!.counts.allowed).toBe(1);
  });
});

describe('recent blocks', () => {
  it('lists live blocks newest first, at most `max`, and drops ended ones', () => {
    let now = 0;
    const blocks = new RecentBlocks(2, () => now);
    blocks.add('10.0.0.1', 60);
    now = 1_000;
    blocks.add('10.0.0.2', 10);
    blocks.add('10.0.0.3', 60);
    expect(blocks.read().map((b) => b.ip)).toEqual(['10.0.0.3', '10.0.0.2']);
    now = 12_000;
    expect(blocks.read().map((b) => b.ip)).toEqual(['10.0.0.3']);
  });
});
