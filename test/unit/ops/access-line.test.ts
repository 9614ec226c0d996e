import { describe, expect, it, vi } from 'vitest';
import { isoNow } from '../../../src/ops/log-writer.ts';
import { accessLine, type AccessFields } from '../../../src/ops/logger.ts';

// The access line is built by hand (ops/logger.ts): it must be exactly what a generic JSON.stringify of the same
// fields gives, for every shape the listeners write and for strings that need escaping.
const generic = (f: AccessFields, time: string) => `{"level":"info","timestamp":"${time}","service":"keygate",${JSON.stringify(f).slice(1, -1)},"msg":"request"}\n`;

describe('accessLine', () => {
  const cases: AccessFields[] = [
    { requestId: 'r1', method: 'GET', path: '/v1/calls', status: 200, durationMs: 1.234, keygateMs: 0.1, upstreamStatus: 200, upstreamMs: 0.5, clientIp: '10.0.0.1', userAgent: 'curl/8', requestBytes: 0, responseBytes: 12, tenantId: 'ten_1', keyId: 'key_1', decision: 'allowed', code: null, trace_id: '0af7651916cd43dd8448eb211c80319c', span_id: 'b7ad6b7169203331' },
    { requestId: 'r2', method: 'POST', path: '(refused)', status: 400, durationMs: 0, keygateMs: 0, upstreamStatus: null, upstreamMs: null, clientIp: '::1', userAgent: null, tenantId: null, keyId: null, decision: 'refused', code: 'malformed_request', listener: 'authz' },
    { requestId: 'r5', method: 'GET', path: '/v1/x', status: 200, durationMs: 1, clientIp: '1.2.3.4', userAgent: 'Mozilla/5.0 "quoted" \\ \u00e9', decision: 'allowed' },
    { requestId: 'r3', method: 'GET', path: '/admin/v1/tenants', status: 201, durationMs: 12.5, decision: 'management', listener: 'internal' },
    { requestId: 'a"b\\c\u0001\u007f\u00e9\u2028', method: 'M"\n', path: '/x"y\\z', status: 599, durationMs: 1e-3, decision: 'd"' },
  ];
  it.each(cases)('writes what JSON.stringify would (%#)', (f) => {
    const line = accessLine(f, '2026-11-29T23:59:59.123Z');
    expect(line).toBe(generic(f, '2026-11-29T23:59:59.123Z'));
    expect(JSON.parse(line)).toMatchObject({ ...f, level: 'info', msg: 'request' });
  });
});

describe('isoNow', () => {
  it('is Date#toISOString of now, across millisecond and second boundaries', () => {
    vi.useFakeTimers();
    try {
      for (const t of [Date.UTC(2026, 10, 29, 23, 59, 59, 998), Date.UTC(2026, 10, 29, 23, 59, 59, 999), Date.UTC(2026, 10, 30, 0, 0, 0, 0), Date.UTC(2026, 10, 30, 0, 0, 0, 7), Date.UTC(2026, 10, 30, 0, 0, 0, 42), Date.UTC(2026, 10, 30, 0, 0, 1, 100), Date.UTC(2027, 0, 1, 0, 0, 0, 5)]) {
        vi.setSystemTime(t);
        expect(isoNow()).toBe(new Date(t).toISOString());
        expect(isoNow()).toBe(new Date(t).toISOString());
      }
    } finally {
      vi.useRealTimers();
    }
  });
});
