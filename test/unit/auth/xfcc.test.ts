import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseXfcc, xfccFingerprint } from '../../../src/auth/xfcc.ts';

// X-Forwarded-Client-Cert by Envoy's grammar. The first rows are Envoy's documented examples
// (configuration/http/http_conn_man/headers) and headers in the shape Envoy and Istio sidecars send; the
// rest are attacks and malformed headers, none of which may yield a certificate another element vouched for.

const H1 = '468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688';
const H2 = '9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e';
const ATTACKER = 'a'.repeat(64);
const VICTIM = 'b'.repeat(64);

const genuine: Array<[string, string, string]> = [
  [
    'Envoy example 1: one certificate, URI SAN, quoted Subject',
    `By=http://frontend.lyft.com;Hash=${H1};Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`,
    H1,
  ],
  [
    'Envoy example 2: two elements, the nearest (right-most) counts',
    `By=http://frontend.lyft.com;Hash=${H1};URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=${H2};URI=http://frontend.lyft.com`,
    H2,
  ],
  [
    'Envoy example 3: URI and two DNS SANs',
    `By=http://frontend.lyft.com;Hash=${H1};Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com`,
    H1,
  ],
  ['SPIFFE URIs, as an Istio sidecar sends them', `By=spiffe://cluster.local/ns/default/sa/keygate;Hash=${H1};Subject="";URI=spiffe://cluster.local/ns/default/sa/dialer`, H1],
  ['an empty URI (Envoy writes the key anyway)', `Hash=${H1};Subject="CN=x";URI=;DNS=a.example`, H1],
  ['an RFC 2253 Subject with escaped commas, quotes and backslashes', `Hash=${H1};Subject="CN=Test\\, Client,O=\\"Lyft\\",OU=a\\\\b";URI=spiffe://x`, H1],
  ['keys in any case, the Hash in upper-case hex', `by=spiffe://a;HASH=${H1.toUpperCase()};subject="CN=x"`, H1],
  ['a quoted Hash', `Hash="${H1}"`, H1],
  ['two header lines, joined by Node with ", "', `Hash=${H1};URI=spiffe://far, By=spiffe://near;Hash=${H2}`, H2],
  // the victim's hash inside a quoted Subject is part of the Subject, not a pair.
  ['row 7: a Hash inside a quoted Subject after an escaped comma', `Hash=${ATTACKER};Subject="CN=a,OU=x\\,Hash=${VICTIM}"`, ATTACKER],
  ['a Hash inside a quoted Subject after a raw comma and semicolon', `Hash=${ATTACKER};Subject="CN=a,Hash=${VICTIM};x=y"`, ATTACKER],
  ['a Hash after an escaped quote stays inside the quotes', `Hash=${ATTACKER};Subject="CN=\\",Hash=${VICTIM},O=\\""`, ATTACKER],
  ['a Hash inside a quoted Cert', `Hash=${ATTACKER};Cert="x;Hash=${VICTIM},y"`, ATTACKER],
  ['the victim in a farther element, the attacker nearest', `Hash=${VICTIM},Hash=${ATTACKER}`, ATTACKER],
];

const malformed: Array<[string, string]> = [
  ['row 7 with the quote left open', `Hash=${ATTACKER};Subject="CN=a,OU=x\\,Hash=${VICTIM}`],
  ['a duplicate Hash in one element', `Hash=${VICTIM};Hash=${ATTACKER}`],
  ['a duplicate Hash in another case', `Hash=${ATTACKER};hash=${VICTIM}`],
  ['a duplicate Hash in a farther element', `Hash=${VICTIM};Hash=${ATTACKER},Hash=${VICTIM}`],
  ['a duplicate Subject', `Hash=${H1};Subject="a";Subject="b"`],
  ['a backslash ending the header inside quotes', `Hash=${H1};Subject="CN=a\\`],
  ['text after a closing quote', `Hash=${H1};Subject="CN=a"x;URI=y`],
  ['a quote inside an unquoted value', `Hash=${H1};URI=spiffe://a"b`],
  ['a quote opening mid-value', `Hash=${H1};URI=a"b,Hash=${VICTIM}"`],
  ['an empty element', `Hash=${H1},,Hash=${H2}`],
  ['a trailing comma', `Hash=${H1},`],
  ['a leading comma', `,Hash=${H1}`],
  ['a trailing semicolon', `Hash=${H1};`],
  ['an empty pair', `Hash=${H1};;URI=x`],
  ['a pair without "="', `Hash=${H1};junk`],
  ['an empty key', `=x;Hash=${H1}`],
  ['a key with a space', `Hash =${H1}`],
  ['an empty header', ''],
  ['only spaces', '   '],
];

const noCertificate: Array<[string, string]> = [
  ['a nearest element without Hash (never an earlier one instead)', `Hash=${VICTIM},By=spiffe://mesh;URI=spiffe://x`],
  ['a Hash one digit short', `Hash=${H1.slice(1)}`],
  ['a Hash one digit long', `Hash=${H1}0`],
  ['a Hash with a non-hex digit', `Hash=${H1.slice(1)}g`],
  ['a colon-separated Hash', `Hash=${H1.match(/../g)!.join(':')}`],
  ['an empty Hash', 'Hash=;URI=x'],
];

describe('X-Forwarded-Client-Cert fingerprint (the nearest element, by Envoy grammar)', () => {
  it.each(genuine)('%s', (_name, header, expected) => {
    expect(xfccFingerprint(header)).toBe(expected);
  });

  it.each(malformed)('malformed, so no certificate: %s', (_name, header) => {
    expect(parseXfcc(header)).toBeNull();
    expect(xfccFingerprint(header)).toBeNull();
  });

  it.each(noCertificate)('no certificate: %s', (_name, header) => {
    expect(parseXfcc(header)).not.toBeNull();
    expect(xfccFingerprint(header)).toBeNull();
  });
});

describe('X-Forwarded-Client-Cert elements', () => {
  it('reads every pair, keys lower-cased, quoted values unescaped, repeated DNS kept in order', () => {
    const header = `By=http://frontend.lyft.com;Hash=${H1};Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com,By=spiffe://b;Hash=${H2};Subject="CN=Test\\, Client,O=\\"Lyft\\""`;
    expect(parseXfcc(header)).toEqual([
      [
        { key: 'by', value: 'http://frontend.lyft.com' },
        { key: 'hash', value: H1 },
        { key: 'subject', value: '/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client' },
        { key: 'uri', value: 'http://testclient.lyft.com' },
        { key: 'dns', value: 'lyft.com' },
        { key: 'dns', value: 'www.lyft.com' },
      ],
      [
        { key: 'by', value: 'spiffe://b' },
        { key: 'hash', value: H2 },
        { key: 'subject', value: 'CN=Test, Client,O="Lyft"' },
      ],
    ]);
  });

  describe('with a real certificate, as Envoy forwards it (Cert and Chain: URL-encoded PEM)', () => {
    let pem: string;
    beforeAll(() => {
      const dir = mkdtempSync(join(tmpdir(), 'keygate-xfcc-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'c.key'), '-subj', '/O=Lyft, Inc./CN=Test Client', '-days', '1', '-out', join(dir, 'c.crt')], { stdio: 'ignore' });
      pem = readFileSync(join(dir, 'c.crt'), 'utf8');
    });

    it('takes the Hash that is the SHA-256 of the forwarded certificate', () => {
      const cert = new X509Certificate(pem);
      const hash = cert.fingerprint256.replaceAll(':', '').toLowerCase();
      const encoded = encodeURIComponent(pem);
      expect(encoded).toMatch(/%0A/);
      const header = `By=spiffe://cluster.local/ns/default/sa/keygate;Hash=${hash};Cert="${encoded}";Chain="${encoded}";Subject="CN=Test Client,O=Lyft\\, Inc.";URI=spiffe://cluster.local/ns/default/sa/dialer;DNS=dialer.default.svc`;
      expect(xfccFingerprint(header)).toBe(hash);
      const nearest = parseXfcc(header)!.at(-1)!;
      const forwarded = decodeURIComponent(nearest.find((p) => p.key === 'cert')!.value);
      expect(new X509Certificate(forwarded).fingerprint256).toBe(cert.fingerprint256);
      expect(nearest.find((p) => p.key === 'subject')!.value).toBe('CN=Test Client,O=Lyft, Inc.');
    });

    it('keeps a %2C-encoded comma in a Cert value as data', () => {
      const header = `Hash=${ATTACKER};Cert="${encodeURIComponent(`${pem},Hash=${VICTIM}`)}"`;
      expect(header).toContain('%2CHash%3D');
      expect(xfccFingerprint(header)).toBe(ATTACKER);
    });
  });
});
