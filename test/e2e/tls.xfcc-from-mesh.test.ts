import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, expectError, proxied, self } from '../helpers/api.ts';
import { startKeygate, type KeygateProcess } from '../helpers/keygate.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// Behind a mesh, X-Forwarded-Client-Cert is believed only from tls.trustXfccFrom peers; from anyone
// else it is stripped and ignored.

const HASH = 'ab'.repeat(32);
const XFCC = `By=spiffe://mesh/keygate;Hash=${HASH};Subject="CN=dialer"`;
let upstream: Upstream;
let trusting: KeygateProcess;
let distrusting: KeygateProcess;

beforeAll(async () => {
  upstream = await startUpstream();
  [trusting, distrusting] = await Promise.all([
    startKeygate({ upstream: upstream.url, config: { tls: { trustXfccFrom: ['127.0.0.1/32', '::1/128'] } } }),
    startKeygate({ upstream: upstream.url, config: { tls: { trustXfccFrom: ['10.0.0.0/8'] } } }),
  ]);
});
afterAll(async () => {
  await Promise.all([trusting?.stop(), distrusting?.stop()]);
  await upstream?.close();
});

describe('X-Forwarded-Client-Cert', () => {
  it('binds enforceMtls keys to the mesh-verified certificate from trusted peers only', async () => {
    for (const [kg, trusted] of [[trusting, true], [distrusting, false]] as const) {
      const { key } = await createTenant(kg, { name: 'mesh', plan: 'pro' });
      const made = await self(kg, key, 'POST', '/api-keys', { enforceMtls: true, clientCertFingerprints: [HASH] });
      expect(made.status).toBe(201);
      const withCert = await proxied(kg, '/v1/x', { 'x-api-key': made.body.key, 'x-forwarded-client-cert': XFCC });
      if (trusted) {
        expect(withCert.status).toBe(200);
        expect(upstream.seen.at(-1)!.headers['x-forwarded-client-cert']).toBe(XFCC);
        const other = await proxied(kg, '/v1/x', { 'x-api-key': made.body.key, 'x-forwarded-client-cert': `Hash=${'cd'.repeat(32)}` });
        expectError(other, 403, 'client_certificate_not_allowed');
      } else {
        expectError(withCert, 403, 'mtls_required');
        // A plain key passes, and the untrusted header never reaches the upstream.
        expect((await proxied(kg, '/v1/x', { 'x-api-key': key, 'x-forwarded-client-cert': XFCC })).status).toBe(200);
        expect(upstream.seen.at(-1)!.headers['x-forwarded-client-cert']).toBeUndefined();
      }
      expectError(await proxied(kg, '/v1/x', { 'x-api-key': made.body.key }), 403, 'mtls_required');
    }
  });
});
