import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/verify.ts';
import { createTenant } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { sendRaw } from '../helpers/routers.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// The signature covers the path the backend receives: the upstream URL's own path, then the canonical target's
// path (review finding: it covered the canonical path alone, so a backend behind `UPSTREAM_URL=http://svc/api`
// could not verify it).

const SECRET = 'signing-secret-0123456789';
let upstream: Upstream;
let kg: KeygateProcess;
const verdicts: boolean[] = [];

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    const path = req.url!.split('?')[0]!;
    verdicts.push(verifySignature(SECRET, req.headers['x-keygate-signature'], { method: req.method!, path, tenantId: String(req.headers['x-tenant-id']), keyId: String(req.headers['x-api-key-id']) }).ok);
    res.end(path);
  });
  kg = await startKeygate({ upstream: `${upstream.url}/api`, env: { KEYGATE_SIGNING_SECRET: SECRET } });
});
afterAll(async () => {
  await kg?.stop();
  await upstream?.close();
});

describe('X-Keygate-Signature', () => {
  it('verifies on the path the backend receives, base path and canonical target included', async () => {
    const { key } = await createTenant(kg, { name: 'signed' });
    const res = await sendRaw(kg.url, 'GET', '/v1/%63alls/7?x=1', { 'X-API-Key': key });
    expect(res.status).toBe(200);
    expect(res.body).toBe('/api/v1/calls/7');
    expect(verdicts).toEqual([true]);
  });
});
