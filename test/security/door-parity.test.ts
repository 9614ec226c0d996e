import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, self } from '../helpers/api.ts';
import { rawExchange, startRecordingUpstream, throughEnvoy, UPGRADE, type Pairs, type RawReply, type RecordingUpstream, type Seen } from '../helpers/doors.ts';
import { startAuthzKeygate, startCaddy, startNginx, type AuthzKeygate, type Gateway } from '../helpers/gateways.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

// One table of hostile requests sent through every door keygate has: the inline proxy (HTTP), its WebSocket
// upgrade, nginx (auth_request) and Caddy (forward_auth) with the configurations of docs/gateways/ as they stand,
// and Envoy's ext_authz form (envoy.yaml, applied as Envoy applies it). Every door must reach the same decision,
// and what reaches the upstream must carry the same identity and none of the client's hostile headers: one
// decision, whatever the door.
//
// The policy: POST /v1/calls/:id needs calls:write, DELETE /v1/calls/:id calls:admin, and every other method
// on /v1/calls/** calls:read. The key used holds calls:read and calls:write, never calls:admin: a request that
// makes the upstream run a DELETE (a method-override header, a lower-case `delete` a backend upper-cases) is the
// attack the table is about, as are a credential, an identity or a client address or certificate the upstream
// would believe.

const POLICY = `defaultAction: deny
routes:
  - { method: POST, path: /v1/calls/:id, permission: calls:write }
  - { method: DELETE, path: /v1/calls/:id, permission: calls:admin }
  - { method: "*", path: /v1/calls/**, permission: calls:read }
`;

type Door = 'proxy' | 'upgrade' | 'nginx' | 'caddy' | 'envoy';
const DOORS: Door[] = ['proxy', 'upgrade', 'nginx', 'caddy', 'envoy'];

/** Stands in for the key values, which differ from run to run. */
type Ref = 'K' | 'K2';

interface Row {
  name: string;
  method: string;
  target: string;
  headers: Array<[string, string | Ref]>;
  /** 'stripped': allowed, with none of `forbidden` (and no "EVIL" value, no key) at the upstream; else the refusal, '<status> <code>'. */
  expect: string;
  /** Names (any case, `_` for `-`) that must not reach the upstream. */
  forbidden?: string[];
  /** Fields the upstream must receive as the client sent them (the upstream's own). */
  kept?: Record<string, string>;
  /** Doors that answer otherwise (why: beside the constants below). */
  except?: Partial<Record<Door, string>>;
}

const OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override'];
const IDENTITY = ['x-tenant-id', 'x-api-key-id', 'x-api-key-type', 'x-api-key-permissions', 'x-session-token-id', 'x-session-token-metadata', 'x-keygate-signature'];

// Through a gateway a key in the query would reach the upstream with the URI, so the authorizer refuses it (the
// inline proxy removes it).
const QUERY_KEY = { nginx: '400 malformed_request', caddy: '400 malformed_request', envoy: '400 malformed_request' } as const;
// nginx refuses a method that is not upper case itself (its own 400 page) before it asks keygate.
const NGINX_METHOD = { nginx: '400 -' } as const;
// nginx (underscores_in_headers off) and Envoy (headers_with_underscores_action: DROP_HEADER) drop a header name
// spelt with `_`; Caddy passes it on and cannot clear it by name, so keygate refuses the check.
const UNDERSCORE = { caddy: '400 malformed_request' } as const;

const ROWS: Row[] = [
  { name: 'X-HTTP-Method-Override: DELETE', method: 'POST', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-HTTP-Method-Override', 'DELETE']], expect: 'stripped', forbidden: OVERRIDES },
  { name: 'X-HTTP-Method: DELETE', method: 'POST', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-HTTP-Method', 'DELETE']], expect: 'stripped', forbidden: OVERRIDES },
  { name: 'X-Method-Override: DELETE', method: 'POST', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Method-Override', 'DELETE']], expect: 'stripped', forbidden: OVERRIDES },
  { name: 'X_HTTP_Method_Override: DELETE', method: 'POST', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X_HTTP_Method_Override', 'DELETE']], expect: 'stripped', except: UNDERSCORE, forbidden: OVERRIDES },
  { name: 'X-Original-URL', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Original-URL', '/admin/EVIL']], expect: 'stripped', forbidden: ['x-original-url'] },
  { name: 'X-Rewrite-URL', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Rewrite-URL', '/admin/EVIL']], expect: 'stripped', forbidden: ['x-rewrite-url'] },
  { name: 'X-Forwarded-Prefix', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Forwarded-Prefix', '/EVIL']], expect: 'stripped', forbidden: ['x-forwarded-prefix'] },
  { name: 'X-Real-IP', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Real-IP', '203.0.113.66']], expect: 'stripped', forbidden: ['x-real-ip'] },
  { name: 'Forwarded', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['Forwarded', 'for=203.0.113.66;host=EVIL.example']], expect: 'stripped', forbidden: ['forwarded'] },
  { name: 'X-Forwarded-Host', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Forwarded-Host', 'EVIL.example']], expect: 'stripped' },
  { name: 'X-Client-Cert', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Client-Cert', 'EVIL']], expect: 'stripped', forbidden: ['x-client-cert'] },
  { name: 'X-SSL-Client-Verify', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-SSL-Client-Verify', 'SUCCESS']], expect: 'stripped', forbidden: ['x-ssl-client-verify'] },
  { name: 'X-Forwarded-Client-Cert', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Forwarded-Client-Cert', `Hash=${'ab'.repeat(32)};Subject="CN=EVIL"`]], expect: 'stripped', forbidden: ['x-forwarded-client-cert'] },
  { name: 'key as X-API-Key and as Bearer', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['Authorization', 'Bearer K']], expect: 'stripped' },
  { name: 'X-API-Key plus another key as Bearer', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['Authorization', 'Bearer K2']], expect: 'stripped' },
  { name: 'key as X-API-Key and as X_Api_Key', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X_Api_Key', 'K']], expect: 'stripped', except: UNDERSCORE },
  { name: 'api_key query beside X-API-Key', method: 'GET', target: '/v1/calls/1?api_key=K', headers: [['X-API-Key', 'K']], expect: 'stripped', except: QUERY_KEY },
  { name: "the upstream's own Bearer beside X-API-Key", method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['Authorization', 'Bearer upstream-own-token']], expect: 'stripped', kept: { authorization: 'Bearer upstream-own-token' } },
  { name: 'X_Tenant_Id', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X_Tenant_Id', 'ten_EVIL']], expect: 'stripped', except: UNDERSCORE },
  { name: 'X_Api_Key_Id', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X_Api_Key_Id', 'key_EVIL']], expect: 'stripped', except: UNDERSCORE },
  { name: 'X_Api_Key_Permissions', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X_Api_Key_Permissions', '*,EVIL']], expect: 'stripped', except: UNDERSCORE },
  { name: 'X-Api_Key-Type (mixed)', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Api_Key-Type', 'EVIL']], expect: 'stripped', except: UNDERSCORE },
  { name: 'x-api-key-PERMISSIONS', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['x-api-key-PERMISSIONS', '*,EVIL']], expect: 'stripped' },
  { name: 'spoofed identity (every header)', method: 'GET', target: '/v1/calls/1', headers: [['X-API-Key', 'K'], ['X-Tenant-Id', 'ten_EVIL'], ['X-Api-Key-Id', 'key_EVIL'], ['X-Api-Key-Type', 'EVIL'], ['X-Api-Key-Permissions', '*,EVIL'], ['X-Keygate-Signature', 't=1,v1=EVIL'], ['X-Session-Token-Id', 'EVIL'], ['X-Session-Token-Metadata', 'EVIL']], expect: 'stripped' },
  { name: 'delete (lower case)', method: 'delete', target: '/v1/calls/1', headers: [['X-API-Key', 'K']], expect: '400 malformed_request', except: NGINX_METHOD },
  { name: 'Delete (mixed case)', method: 'Delete', target: '/v1/calls/1', headers: [['X-API-Key', 'K']], expect: '400 malformed_request', except: NGINX_METHOD },
  // An upper-case token no parser of keygate's knows: the proxy's doors cannot read it, so no door decides on it.
  { name: 'FROB (unknown method)', method: 'FROB', target: '/v1/calls/1', headers: [['X-API-Key', 'K']], expect: '400 malformed_request' },
];

/** A header name as CGI/WSGI servers fold it: `_` and `-` alike, any case. */
const fold = (name: string) => name.toLowerCase().replaceAll('_', '-');

let redis: RedisServer;
let upstream: RecordingUpstream;
let kg: AuthzKeygate;
let nginx: Gateway;
let caddy: Gateway;
let tenantId: string;
const keys = { K: '', K2: '', id: '' };

beforeAll(async () => {
  [redis, upstream] = await Promise.all([startRedis(), startRecordingUpstream()]);
  const dir = mkdtempSync(join(tmpdir(), 'keygate-parity-'));
  writeFileSync(join(dir, 'policy.yaml'), POLICY);
  kg = await startAuthzKeygate({ redisUrl: redis.url, upstream: upstream.url, env: { KEYGATE_POLICY: join(dir, 'policy.yaml') } });
  [nginx, caddy] = await Promise.all([startNginx({ authz: kg.authzPort, upstream: upstream.port }), startCaddy({ authz: kg.authzPort, upstream: upstream.port })]);
  const { tenant, key } = await createTenant(kg, { name: 'parity' });
  tenantId = tenant.id;
  const made = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read', 'calls:write'], rateLimit: { requestsPerMinute: 600 } });
  const other = await self(kg, key, 'POST', '/api-keys', { permissions: ['calls:read'] });
  keys.K = made.body.key;
  keys.id = made.body.id;
  keys.K2 = other.body.key;
}, 60_000);

afterAll(async () => {
  await Promise.all([nginx?.stop(), caddy?.stop()]);
  await kg?.stop();
  await Promise.all([upstream?.close(), redis?.close()]);
});

const resolve = (v: string): string => v.replace(/\bK2\b/, keys.K2).replace(/\bK\b/, keys.K);

interface Sent {
  refused: RawReply | null;
  /** What the upstream received, when the request reached it. */
  seen: Pairs | null;
  method: string | null;
}

/** Sends one row through one door; what the client got and what the upstream saw. */
async function send(door: Door, row: Row): Promise<Sent> {
  const pairs: Pairs = row.headers.map(([n, v]) => [n, resolve(v)]);
  const target = resolve(row.target);
  if (door === 'envoy') {
    const r = await throughEnvoy(kg.authzPort, row.method, target, pairs);
    return { refused: r.refused, seen: r.upstream, method: r.upstream ? row.method : null };
  }
  const before = upstream.seen.length;
  let reply: RawReply;
  if (door === 'upgrade') {
    // The same hostile fields on a WebSocket upgrade (a GET, the only method an upgrade has, unless the row's
    // method is itself the attack).
    const method = /^(GET|POST|DELETE)$/.test(row.method) ? 'GET' : row.method;
    reply = await rawExchange(kg.port, method, target, [...UPGRADE, ...pairs]);
  } else {
    const port = Number(new URL(door === 'proxy' ? kg.url : door === 'nginx' ? nginx.url : caddy.url).port);
    reply = await rawExchange(port, row.method, target, pairs);
  }
  const ok = door === 'upgrade' ? reply.status === 101 : reply.status === 200;
  // The upstream records a request before it answers: once the client has its answer, the record is there.
  const arrived: Seen | undefined = upstream.seen.length > before ? upstream.seen.at(-1) : undefined;
  if (!ok) return { refused: reply, seen: arrived ? arrived.pairs : null, method: arrived?.method ?? null };
  return { refused: null, seen: arrived?.pairs ?? [], method: arrived?.method ?? null };
}

/** One cell of the table: 'stripped', '<status> <code>', or what went wrong. */
function cell(row: Row, sent: Sent): string {
  if (sent.refused) {
    let code = '-';
    try {
      code = (JSON.parse(sent.refused.body) as { error: { code: string } }).error.code;
    } catch {
      // not keygate's envelope (a parser's or a gateway's own 400)
    }
    const leaked = sent.seen ? ' (but the upstream got it)' : '';
    return `${sent.refused.status} ${code}${leaked}`;
  }
  const seen = sent.seen ?? [];
  const problems: string[] = [];
  const folded = seen.map(([n, v]) => [fold(n), v] as const);
  for (const [n, v] of seen) {
    if (v.includes('EVIL')) problems.push(`${n}: ${v}`);
    else if (v.includes(keys.K) || v.includes(keys.K2) || /kg_[sp]k_/.test(v)) problems.push(`${n}: <key>`);
  }
  for (const name of row.forbidden ?? []) for (const [n] of folded) if (n === name) problems.push(`${name} arrived`);
  // The identity: exactly one of each header keygate sets (whatever spelling the client tried), keygate's value.
  const expected: Record<string, string> = { 'x-tenant-id': tenantId, 'x-api-key-id': keys.id, 'x-api-key-type': 'private', 'x-api-key-permissions': 'calls:read,calls:write' };
  for (const name of IDENTITY) {
    const values = folded.filter(([n]) => n === name).map(([, v]) => v);
    const want = expected[name];
    if (want === undefined ? values.length !== 0 : values.length !== 1 || values[0] !== want) problems.push(`${name}=${JSON.stringify(values)}`);
  }
  for (const [name, value] of Object.entries(row.kept ?? {})) {
    const values = folded.filter(([n]) => n === name).map(([, v]) => v);
    if (values.length !== 1 || values[0] !== value) problems.push(`${name} not kept: ${JSON.stringify(values)}`);
  }
  if (/^[A-Z]+$/.test(row.method) && sent.method !== null && sent.method !== row.method && sent.method !== 'GET') problems.push(`method ${sent.method}`);
  return problems.length ? `LEAKED ${[...new Set(problems)].join('; ')}` : 'stripped';
}

const expectedCell = (row: Row, door: Door): string => row.except?.[door] ?? row.expect;

describe('one decision for every door: hostile requests through the proxy, its WebSocket upgrade, nginx, Caddy and Envoy', () => {
  it('refuses or strips every hostile request alike on every door, with the same identity at the upstream', async () => {
    const got: Record<string, Record<Door, string>> = {};
    const want: Record<string, Record<Door, string>> = {};
    for (const row of ROWS) {
      got[row.name] = {} as Record<Door, string>;
      want[row.name] = {} as Record<Door, string>;
      for (const door of DOORS) {
        got[row.name]![door] = cell(row, await send(door, row));
        want[row.name]![door] = expectedCell(row, door);
      }
    }
    // The whole table at once, so a failure shows every door and row that differs.
    console.log(['attack | ' + DOORS.join(' | '), ...ROWS.map((r) => `${r.name} | ${DOORS.map((d) => got[r.name]![d]).join(' | ')}`)].join('\n'));
    expect(got).toEqual(want);
  }, 120_000);
});
