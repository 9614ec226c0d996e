import { readFileSync } from 'node:fs';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sign } from '../../../src/decision/signature.ts';
import { verifySignature } from '../../../src/verify.ts';
import { sign as signWebhook } from '../../../src/webhooks/deliver.ts';
import { vectors, VECTORS_FILE } from '../../vectors/make-signatures.ts';

// The cross-language vectors (test/vectors/signatures.json), which the Python package's tests read too: the same
// signed requests and deliveries must get the same verdict from `keygate/verify`, from `standardwebhooks` and
// from keygate_sdk, and the valid ones must be exactly what keygate's signers produce.

interface Doc {
  identity: Array<{ name: string; secret: string; now: number; toleranceSeconds?: number; method: string; path: string; basePath: string; headers: Record<string, string>; expect: string }>;
  webhooks: Array<{ name: string; secret: string; now: number; headers: Record<string, string>; body: string; expect: 'ok' | 'invalid' }>;
}

const doc = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as Doc;

afterEach(() => {
  vi.useRealTimers();
});

describe('signature vectors', () => {
  it('are what the generator writes (a changed signer changes them: a protocol change for every backend)', () => {
    expect(readFileSync(VECTORS_FILE, 'utf8')).toBe(vectors());
  });

  it('cover valid, tampered, expired, wrong base path and malformed requests and deliveries', () => {
    const kinds = (names: string[]) => new Set(names.map((n) => n.split(':')[0]));
    expect(kinds(doc.identity.map((v) => v.name))).toEqual(new Set(['valid', 'wrong base path', 'canonical path', 'tampered', 'expired', 'unsigned', 'malformed']));
    expect(kinds(doc.webhooks.map((v) => v.name))).toEqual(new Set(['valid', 'tampered', 'expired', 'unsigned', 'malformed']));
  });

  describe.each(doc.identity)('X-Keygate-Signature: $name', (v) => {
    const fields = { method: v.method, path: v.basePath + v.path, tenantId: v.headers['x-tenant-id']!, keyId: v.headers['x-api-key-id']! };

    it(`verifies as ${v.expect}`, () => {
      const result = verifySignature(v.secret, v.headers['x-keygate-signature'], fields, { nowSeconds: v.now, ...(v.toleranceSeconds ? { toleranceSeconds: v.toleranceSeconds } : {}) });
      expect(result).toEqual(v.expect === 'ok' ? { ok: true } : { ok: false, reason: v.expect });
    });

    if (v.expect === 'ok') {
      it('is what the proxy signs for that request', () => {
        const header = v.headers['x-keygate-signature']!;
        const t = Number(/^t=(\d+),/.exec(header)![1]);
        expect(sign(v.secret, fields, t)).toBe(header);
      });
    }
  });

  describe.each(doc.webhooks)('webhook delivery: $name', (v) => {
    it(`verifies as ${v.expect} with standardwebhooks`, () => {
      vi.useFakeTimers({ now: v.now * 1000, toFake: ['Date'] });
      const verify = () => new Webhook(v.secret).verify(v.body, v.headers);
      if (v.expect === 'ok') expect(verify()).toEqual(JSON.parse(v.body));
      else expect(verify).toThrow();
    });

    if (v.expect === 'ok') {
      it('carries the signature keygate computes for it', () => {
        const expected = signWebhook(v.secret, v.headers['webhook-id']!, Number(v.headers['webhook-timestamp']), v.body);
        expect(v.headers['webhook-signature']!.split(' ')).toContain(expected);
      });
    }
  });
});
