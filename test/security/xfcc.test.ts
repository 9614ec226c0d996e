import { beforeAll, describe, expect, it } from 'vitest';
import { createTenant, expectError, proxied, self } from '../helpers/api.ts';
import type { KeygateProcess } from '../helpers/keygate.ts';
import { useServers } from '../helpers/servers.ts';

// X-Forwarded-Client-Cert from a tls.trustXfccFrom peer is read by Envoy's grammar, and only the nearest
// element's Hash binds a key. Found in review: `Hash=<attacker>;Subject="CN=a,OU=x\,Hash=<victim>"` from a
// trusted mesh peer passed for a key pinned to the victim's fingerprint (the header was split on a raw comma).

const ATTACKER = 'a1'.repeat(32);
const VICTIM = 'b2'.repeat(32);
const GENUINE = `By=spiffe://cluster.local/ns/default/sa/keygate;Hash=${VICTIM};Subject="CN=victim,O=Example\\, Inc.";URI=spiffe://cluster.local/ns/default/sa/victim`;
const ROW_7 = `Hash=${ATTACKER};Subject="CN=a,OU=x\\,Hash=${VICTIM}"`;

const servers = useServers();
let trusting: KeygateProcess;
let distrusting: KeygateProcess;

beforeAll(async () => {
  [trusting, distrusting] = await Promise.all([
    servers.keygate({ config: { tls: { trustXfccFrom: ['127.0.0.1/32', '::1/128'] } } }),
    // Trusts a mesh elsewhere (so enforceMtls keys can be made), never the test's own address.
    servers.keygate({ config: { tls: { trustXfccFrom: ['10.0.0.0/8'] } } }),
  ]);
});

/** A key bound to the victim's certificate on `kg`. */
async function pinnedKey(kg: KeygateProcess): Promise<string> {
  const { key } = await createTenant(kg, { name: 'mesh', plan: 'pro' });
  const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['*'], enforceMtls: true, clientCertFingerprints: [VICTIM] });
  expect(made.status).toBe(201);
  return made.body.key;
}

const call = (kg: KeygateProcess, key: string, xfcc?: string) =>
  proxied(kg, '/v1/calls', { 'x-api-key': key, ...(xfcc === undefined ? {} : { 'x-forwarded-client-cert': xfcc }) });

describe('X-Forwarded-Client-Cert from a trusted mesh peer', () => {
  let key: string;
  beforeAll(async () => {
    key = await pinnedKey(trusting);
  });

  it('passes the genuine header whose nearest element holds the pinned Hash', async () => {
    expect((await call(trusting, key, GENUINE)).status).toBe(200);
    expect((await call(trusting, key, `By=spiffe://edge;Hash=${ATTACKER};URI=spiffe://edge,${GENUINE}`)).status).toBe(200);
  });

  it('row 7: a Hash inside the quoted Subject is not a Hash', async () => {
    expectError(await call(trusting, key, ROW_7), 403, 'client_certificate_not_allowed');
    expectError(await call(trusting, key, `Hash=${ATTACKER};Subject="CN=a,Hash=${VICTIM};x=y"`), 403, 'client_certificate_not_allowed');
    expectError(await call(trusting, key, `Hash=${ATTACKER};Cert="-----BEGIN%20CERTIFICATE-----%0A,Hash=${VICTIM}"`), 403, 'client_certificate_not_allowed');
  });

  it('only the nearest element counts: the victim in a farther element does not pass', async () => {
    expectError(await call(trusting, key, `${GENUINE},Hash=${ATTACKER};URI=spiffe://x`), 403, 'client_certificate_not_allowed');
    expectError(await call(trusting, key, `${GENUINE},By=spiffe://near;URI=spiffe://x`), 403, 'mtls_required');
  });

  it('a malformed header is no certificate at all, never a partial reading', async () => {
    for (const bad of [
      `Hash=${ATTACKER};Subject="CN=a,OU=x\\,Hash=${VICTIM}`, // row 7 with the quote left open
      `Hash=${VICTIM};Hash=${ATTACKER}`,
      `Hash=${ATTACKER};Hash=${VICTIM}`,
      `Hash=${VICTIM};Subject="CN=a"junk`,
      `Hash=${VICTIM};URI=a"b`,
      `Hash=${VICTIM},`,
      `Hash=${VICTIM}0`,
      `${GENUINE};`,
    ]) {
      expectError(await call(trusting, key, bad), 403, 'mtls_required');
    }
  });

  it('no header: mtls_required', async () => {
    expectError(await call(trusting, key), 403, 'mtls_required');
  });
});

describe('X-Forwarded-Client-Cert from a peer outside tls.trustXfccFrom', () => {
  it('is ignored, genuine or not: mtls_required', async () => {
    const key = await pinnedKey(distrusting);
    for (const header of [GENUINE, ROW_7]) expectError(await call(distrusting, key, header), 403, 'mtls_required');
  });
});
