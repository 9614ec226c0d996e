import { describe, expect, it } from 'vitest';
import { canonicalTarget, isRefusal } from '../../../src/http/target.ts';

const url = (raw: string) => {
  const t = canonicalTarget(raw);
  return isRefusal(t) ? `refused: ${t.refused}` : t.url;
};

describe('canonicalTarget', () => {
  it.each([
    ['/', '/'],
    ['/v1/calls', '/v1/calls'],
    ['/v1/calls/', '/v1/calls/'],
    ['/v1/%63alls', '/v1/calls'],
    ['/v1/a%7eb%2Dc%5f', '/v1/a~b-c_'],
    ['/v1/a%20b', '/v1/a%20b'],
    ['/v1/a%3ab', '/v1/a%3Ab'],
    ['/v1/caf%c3%a9', '/v1/caf%C3%A9'],
    ['/v1/a.b/.c/..d', '/v1/a.b/.c/..d'],
    ['/v1/x?api_key=k', '/v1/x'],
    ['/v1/x?a=1&api_key=k&b=%2F', '/v1/x?a=1&b=%2F'],
    ['/v1/x?api%5Fkey=k&API_KEY=kept', '/v1/x?API_KEY=kept'],
    ['/v1/x?api+key=kept', '/v1/x?api+key=kept'],
    ['/v1/x?', '/v1/x'],
  ])('%s → %s', (raw, want) => {
    expect(url(raw)).toBe(want);
  });

  it.each([
    'http://host/v1', '*', '', 'v1/x',
    '/v1/x#f', '/v1/x?y#f',
    '/v1/../x', '/v1/./x', '/v1/..', '/v1/%2e%2e/x', '/v1/%2E/x', '/v1/..;x/y', '/v1/.%2e',
    '/v1/a%2fb', '/v1/a%2Fb', '/v1/a%5cb', '/v1\\x',
    '/v1//x', '//v1',
    '/v1/%', '/v1/%4', '/v1/%zz',
    '/v1/%00', '/v1/%1f', '/v1/%7F',
    '/v1/%C0%AE', '/v1/%ff', '/v1/%c3',
    '/v1/\u00e9', '/v1/a b', '/v1/\t',
  ])('refuses %j', (raw) => {
    expect(url(raw)).toMatch(/^refused: /);
  });
});
