import { describe, expect, it } from 'vitest';
import { MemorySessionSlots } from '../../../src/limits/sessions.ts';

// The embedded store's session slots: a key or tenant whose sessions all ended holds nothing, so sessions
// opened by ever new keys (children minted, used for a session and revoked) do not grow the process.

describe('MemorySessionSlots', () => {
  it('holds sets only for keys and tenants with a live session, and still enforces the caps', async () => {
    const slots = new MemorySessionSlots();
    for (let i = 0; i < 1_000; i++) {
      expect(await slots.acquire(`ten_${i % 7}`, `key_${i}`, `s${i}`, 1, null)).toBe('ok');
      await slots.release(`ten_${i % 7}`, `key_${i}`, `s${i}`);
    }
    expect(slots.size).toBe(0);
    expect(await slots.acquire('ten_a', 'key_a', 's1', 1, 2)).toBe('ok');
    expect(await slots.acquire('ten_a', 'key_a', 's2', 1, 2)).toBe('key');
    expect(await slots.acquire('ten_a', 'key_b', 's3', 1, 2)).toBe('ok');
    expect(await slots.acquire('ten_a', 'key_c', 's4', 1, 2)).toBe('tenant');
    expect(slots.size).toBe(3);
  });
});
