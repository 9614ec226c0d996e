import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deliverer } from '../../../src/webhooks/deliver.ts';

// What a failed attempt says reaches the tenant (its endpoint's delivery log): it must not tell what a name
// resolves to, nor which address was connected to. Real DNS (`localhost`), real sockets, a real receiver.

const ADDRESS = /\d+\.\d+\.\d+\.\d+|::1|\[|localhost|\d{2,5}\b/;
let reset: Server;
let resetUrl = '';

beforeAll(async () => {
  // Accepts and drops every connection: a reset, not an answer.
  reset = createServer((req) => req.socket.destroy());
  await new Promise<void>((r) => reset.listen(0, '127.0.0.1', () => r()));
  resetUrl = `http://127.0.0.1:${(reset.address() as AddressInfo).port}/hooks`;
});
afterAll(() => new Promise<void>((r) => reset.close(() => r())));

describe('a failed delivery attempt is no DNS oracle', () => {
  it('a name resolving to a private address, and a private address literal, say only "blocked: the address is not allowed"', async () => {
    const d = new Deliverer({ timeoutMs: 2_000, maxResponseBytes: 1024, allowPrivateTargets: false });
    try {
      const byName = await d.post('http://localhost:9/hooks', {}, '{}');
      const byLiteral = await d.post('http://127.0.0.1:9/hooks', {}, '{}');
      const v6 = await d.post('http://[::1]:9/hooks', {}, '{}');
      console.log(`blocked attempts said: ${JSON.stringify([byName.error, byLiteral.error, v6.error])}`);
      expect([byName.error, byLiteral.error, v6.error]).toEqual(Array(3).fill('blocked: the address is not allowed'));
    } finally {
      await d.close();
    }
  });

  it('other failures come from a closed set of messages naming no address or port', async () => {
    const d = new Deliverer({ timeoutMs: 1_000, maxResponseBytes: 1024, allowPrivateTargets: true });
    try {
      const refused = await d.post('http://127.0.0.1:9/hooks', {}, '{}');
      const dropped = await d.post(resetUrl, {}, '{}');
      const unknown = await d.post('http://no-such-host.invalid/hooks', {}, '{}');
      const errors = [refused.error, dropped.error, unknown.error];
      console.log(`failed attempts said: ${JSON.stringify(errors)}`);
      for (const e of errors) {
        expect(e).not.toBeNull();
        expect(e!).not.toMatch(ADDRESS);
      }
      expect(refused.error).toBe('refused: the receiver refused the connection');
      expect(unknown.error).toBe('unresolved: the name could not be resolved');
    } finally {
      await d.close();
    }
  });
});
