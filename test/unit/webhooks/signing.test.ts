import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { isPrivateAddress, newSecret, signatures } from '../../../src/webhooks/deliver.ts';
import { backoffMs } from '../../../src/webhooks/worker.ts';

describe('webhook signing (Standard Webhooks)', () => {
  it('verifies with the standardwebhooks library, with either secret during a rotation, and not after it', () => {
    const [old, next] = [newSecret(), newSecret()];
    expect(old).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const body = JSON.stringify({ type: 'key.created', timestamp: new Date().toISOString(), data: { keyId: 'key_1' } });
    const ts = Math.floor(Date.now() / 1000);
    const both = signatures([{ secret: next, expiresAt: null }, { secret: old, expiresAt: new Date(Date.now() + 60_000).toISOString() }], 'msg_1', ts, body);
    expect(both.split(' ')).toHaveLength(2);
    const headers = (sig: string) => ({ 'webhook-id': 'msg_1', 'webhook-timestamp': String(ts), 'webhook-signature': sig });
    for (const s of [old, next]) expect(new Webhook(s).verify(body, headers(both))).toEqual(JSON.parse(body));
    const after = signatures([{ secret: next, expiresAt: null }, { secret: old, expiresAt: new Date(Date.now() - 1).toISOString() }], 'msg_1', ts, body);
    expect(() => new Webhook(old).verify(body, headers(after))).toThrow();
    expect(() => new Webhook(next).verify(body.replace('key_1', 'key_2'), headers(after))).toThrow();
  });
});

describe('webhook targets', () => {
  it('treats loopback, private, link-local, CGNAT, unique-local, multicast and mapped forms as private', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::2', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-address']) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '172.32.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) expect(isPrivateAddress(a), a).toBe(false);
  });
});

describe('retry backoff', () => {
  it('doubles from the base up to the cap, with jitter in [0.5, 1) of the step', () => {
    expect(backoffMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffMs(3, 1000, 60_000, () => 0.999)).toBe(3998);
    expect(backoffMs(30, 1000, 60_000, () => 0)).toBe(30_000);
    expect(backoffMs(500, 1000, 60_000, () => 0.5)).toBe(45_000);
  });
});
