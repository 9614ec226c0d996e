import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startKeygate } from '../helpers/keygate.ts';

// The internal listener's probes (/healthz, /readyz, /metrics) are answered without Express, which is
// loaded with the first management request (server/management.ts). They must answer exactly as Express did: the
// same status, header fields in the same order, the same body; and the APIs must work once loaded, however
// many requests arrive while they load.

interface Raw {
  status: number;
  /** Header names as sent, in order, without the connection's own (Date, Connection, Keep-Alive). */
  names: string[];
  headers: Record<string, string>;
  body: string;
}

function raw(url: string, method = 'GET', headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const names = res.rawHeaders.filter((_, i) => i % 2 === 0).filter((n) => !/^(date|connection|keep-alive)$/i.test(n));
        resolve({ status: res.statusCode!, names, headers: res.headers as Record<string, string>, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The body with what changes from one request to the next left out (readiness latencies and uptime, metric values). */
const stable = (path: string, body: string): unknown =>
  path === '/readyz' ? { ...(JSON.parse(body) as object), checks: null, uptimeSeconds: null } : path === '/metrics' ? body.split('\n').filter((l) => l.startsWith('# ')) : body;

describe('the internal listener without Express', () => {
  it('answers /healthz, /readyz and /metrics as the Express routes do (their trailing-slash forms still go to Express)', async () => {
    const kg = await startKeygate();
    try {
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        for (const method of ['GET', 'HEAD']) {
          const direct = await raw(kg.opsUrl + path, method);
          const viaExpress = await raw(`${kg.opsUrl}${path}/`, method);
          expect(direct.status, `${method} ${path}`).toBe(200);
          expect(direct.names, `${method} ${path}`).toEqual(viaExpress.names);
          expect(direct.names).toEqual(['X-Request-Id', 'Content-Type', 'Content-Length']);
          expect(direct.headers['content-type']).toBe(viaExpress.headers['content-type']);
          if (method === 'HEAD') expect([direct.body, viaExpress.body]).toEqual(['', '']);
          else expect(stable(path, direct.body)).toEqual(stable(path, viaExpress.body));
        }
      }
      expect((await raw(`${kg.opsUrl}/healthz?probe=1`)).body).toBe('{"status":"ok"}');
      // A well-formed request id is kept, as assignRequestId keeps it.
      expect((await raw(`${kg.opsUrl}/healthz`, 'GET', { 'x-request-id': 'probe-1' })).headers['x-request-id']).toBe('probe-1');
      // Other methods and conditional requests are Express's, as before: 404 and 304.
      expect((await raw(`${kg.opsUrl}/healthz`, 'POST')).status).toBe(404);
      expect((await raw(`${kg.opsUrl}/healthz`, 'GET', { 'if-none-match': '*' })).status).toBe(304);
      // Counted as internal requests (and not access-logged), as the Express middleware counted them.
      const metrics = (await raw(`${kg.opsUrl}/metrics`)).body;
      const count = Number(/^keygate_requests_total\{listener="internal",method="GET",status_class="2xx"\} (\d+)/m.exec(metrics)?.[1]);
      expect(count).toBe(8); // six GETs compared above, two more since (this one counts once it is answered)
      expect(kg.output()).not.toMatch(/"path":"\/healthz"/);
    } finally {
      await kg.stop();
    }
  });

  it('loads the management APIs on their first request, however many arrive at once', async () => {
    const kg = await startKeygate();
    try {
      const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const first = await Promise.all([
        ...Array.from({ length: 5 }, () => raw(`${kg.opsUrl}/admin/v1/tenants`, 'GET', auth)),
        ...Array.from({ length: 5 }, () => raw(`${kg.url}/keygate/v1/openapi.json`)),
        raw(`${kg.opsUrl}/nowhere`),
      ]);
      expect(first.slice(0, 5).map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect(first.slice(5, 10).map((r) => (JSON.parse(r.body) as { openapi: string }).openapi)).toEqual(Array(5).fill('3.1.0'));
      const missing = first[10]!;
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.body)).toEqual({ error: { code: 'not_found', message: 'No route for GET /nowhere.', requestId: missing.headers['x-request-id'] } });
    } finally {
      await kg.stop();
    }
  });
});
