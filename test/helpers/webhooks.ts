import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, expect } from 'vitest';
import { admin } from './api.ts';
import type { KeygateProcess } from './keygate.ts';

// Webhook receivers for end-to-end tests: real HTTP servers on 127.0.0.1 that verify every delivery with
// `standardwebhooks` — the Standard Webhooks specification's own library, not keygate's code.

/** Fast delivery for tests: short polls, backoff and timeouts, and receivers on 127.0.0.1 allowed. */
export const FAST_WEBHOOKS = { enabled: true, allowPrivateTargets: true, pollIntervalMs: 50, retryBaseMs: 100, retryMaxMs: 400, timeoutMs: 1_000, claimIdleMs: 2_000 };

export interface Received {
  id: string;
  type: string;
  data: Record<string, any>;
  at: number;
  /** Secrets (of those given to the receiver) whose signature verified. */
  verifiedWith: string[];
}

type Answer = number | 'hang';

export interface Receiver {
  url: string;
  got: Received[];
  secrets: string[];
  /** Open requests (held or hanging): answer them with `release`. */
  held: Array<{ req: IncomingMessage; res: ServerResponse; r: Received }>;
  /** Event ids answered 2xx (on a connection still open: the sender saw the answer). */
  delivered: Set<string>;
  answer: (r: Received, nth: number) => Answer;
  release(status: number): void;
  close(): Promise<void>;
}

/** Receivers started in a test file, closed after its tests. */
export function useReceivers(): (answer?: Receiver['answer']) => Promise<Receiver> {
  const receivers: Receiver[] = [];
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
  });
  return async (answer = () => 204) => {
    const rec = await startReceiver(answer);
    receivers.push(rec);
    return rec;
  };
}

async function startReceiver(answer: Receiver['answer']): Promise<Receiver> {
  const rec: Receiver = {
    url: '',
    got: [],
    secrets: [],
    held: [],
    delivered: new Set(),
    answer,
    release(status) {
      for (const { res, r } of rec.held.splice(0)) {
        if (res.destroyed || res.socket?.destroyed) continue;
        res.writeHead(status).end();
        if (status < 300) rec.delivered.add(r.id);
      }
    },
    close: () => new Promise((r) => {
      for (const { res } of rec.held.splice(0)) res.destroy();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) };
      const verifiedWith = rec.secrets.filter((s) => {
        try {
          new Webhook(s).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      const payload = JSON.parse(body) as { type: string; data: Record<string, unknown> };
      const r: Received = { id: headers['webhook-id'], type: payload.type, data: payload.data, at: Date.now(), verifiedWith };
      rec.got.push(r);
      const a = rec.answer(r, rec.got.filter((g) => g.id === r.id).length);
      if (a === 'hang') return void rec.held.push({ req, res, r });
      res.writeHead(a).end();
      if (a < 300) rec.delivered.add(r.id);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  rec.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return rec;
}

/** Polls `probe` every 50 ms until it is truthy. */
export async function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


/** A platform endpoint (admin API) delivering `events` to `rec`, whose secret `rec` verifies with. */
export async function platformEndpoint(kg: KeygateProcess, rec: Receiver, events: string[] = ['*']): Promise<{ id: string; secret: string }> {
  const r = await admin(kg, 'POST', '/webhooks', { url: rec.url, events });
  expect(r.status).toBe(201);
  expect(r.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
  rec.secrets.push(r.body.secret);
  return { id: r.body.id, secret: r.body.secret };
}
