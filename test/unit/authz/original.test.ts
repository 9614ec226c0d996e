import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { carriesQueryKey, gatewayClientIp, isOriginalRefusal, originalOf } from '../../../src/authz/original.ts';
import { compileCidrs } from '../../../src/http/client-ip.ts';

// Reading the original request from a gateway's check (src/authz/original.ts).

const check = (url: string, raw: string[], method = 'GET', peer = '10.0.0.5') =>
  ({ url, method, rawHeaders: raw, socket: { remoteAddress: peer } }) as unknown as IncomingMessage;

describe('originalOf', () => {
  it('reads each form from its own fields, chosen by the check path', () => {
    expect(originalOf(check('/forward-auth', ['X-Forwarded-Method', 'POST', 'X-Forwarded-Uri', '/v1/calls?x=1', 'X-Original-URI', '/other']))).toEqual({ form: 'forward-auth', method: 'POST', uri: '/v1/calls?x=1' });
    expect(originalOf(check('/auth-request?ignored=1', ['X-Original-Method', 'DELETE', 'X-Original-URI', '/v1/a', 'X-Forwarded-Uri', '/other']))).toEqual({ form: 'auth-request', method: 'DELETE', uri: '/v1/a' });
    expect(originalOf(check('/ext-authz/v1/calls/1?page=2', ['X-Forwarded-Uri', '/other'], 'PATCH'))).toEqual({ form: 'ext-authz', method: 'PATCH', uri: '/v1/calls/1?page=2' });
    expect(originalOf(check('/ext-authz/', []))).toEqual({ form: 'ext-authz', method: 'GET', uri: '/' });
  });

  it('refuses missing, repeated and malformed fields, and unknown paths', () => {
    const codes = [
      check('/forward-auth', ['X-Forwarded-Method', 'GET']),
      check('/forward-auth', ['X-Forwarded-Method', 'GET', 'X-Forwarded-Uri', '/a', 'x-forwarded-uri', '/b']),
      check('/forward-auth', ['X-Forwarded-Method', 'GET, POST', 'X-Forwarded-Uri', '/a']),
      check('/auth-request', ['X-Forwarded-Method', 'GET', 'X-Forwarded-Uri', '/a']),
      check('/ext-authz', []),
      check('/ext-authzed/v1', []),
      check('/', []),
    ].map((c) => {
      const o = originalOf(c);
      return isOriginalRefusal(o) ? o.code : o.form;
    });
    expect(codes).toEqual(['malformed_request', 'malformed_request', 'malformed_request', 'malformed_request', 'not_found', 'not_found', 'not_found']);
  });
});

describe('gatewayClientIp', () => {
  const proxies = compileCidrs(['10.9.0.0/16']);
  it.each([
    [[], null, '10.0.0.5'], // no header: the gateway itself
    [['X-Forwarded-For', '203.0.113.9'], null, '203.0.113.9'],
    [['X-Forwarded-For', '1.1.1.1, 203.0.113.9'], null, '203.0.113.9'], // a client's own entry to the left is not believed
    [['X-Forwarded-For', '1.1.1.1', 'X-Forwarded-For', '203.0.113.9'], null, '203.0.113.9'],
    [['X-Forwarded-For', '203.0.113.9, 10.9.1.1'], proxies, '203.0.113.9'], // past a trusted load balancer
    [['X-Forwarded-For', '203.0.113.9, 10.9.1.1'], null, '10.9.1.1'],
    [['X-Forwarded-For', '10.9.1.2, 10.9.1.1'], proxies, '10.9.1.2'], // all trusted: the left-most
    [['X-Forwarded-For', 'unknown'], null, '10.0.0.5'],
    [['X-Forwarded-For', 'garbage, 10.9.1.1'], proxies, '10.9.1.1'], // never walks onto a malformed entry
  ] as const)('%j (trusted proxies: %s) → %s', (raw, trusted, expected) => {
    expect(gatewayClientIp(check('/forward-auth', [...raw]), trusted)).toBe(expected);
  });
});

describe('carriesQueryKey', () => {
  it('finds api_key under any spelling URLSearchParams reads as api_key', () => {
    expect(['/a?api_key=1', '/a?x=1&api_key', '/a?api%5Fkey=1', '/a?api%5fkey=1'].map(carriesQueryKey)).toEqual([true, true, true, true]);
    expect(['/a', '/a?apikey=1', '/a?x=api_key', '/a?api_keys=1'].map(carriesQueryKey)).toEqual([false, false, false, false]);
  });
});
