import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { inspectForServe } from '../../../src/server/config-check.ts';
import { servedConfiguration } from '../../../src/server/serve-config.ts';

// `serve` checks its configuration and route policy in a child process (server/config-checker.ts) and receives
// them as data: what it receives must be what checking in the process itself gives, option for option (the
// environment's overrides, resolved file paths, the policy's defaults included).

const saved = { ...process.env };
let dir: string | null = null;

afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

describe("serve's configuration, checked in a child process", () => {
  it('is the configuration and policy an in-process check gives', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keygate-serve-config-'));
    const policy = { defaultAction: 'deny', routes: [{ method: ['GET', 'POST'], path: '/v1/calls/:id', permission: 'calls:read' }, { path: '/v1/public/**', public: true }] };
    writeFileSync(join(dir, 'policy.yaml'), stringify(policy));
    const config = {
      server: { trustedProxies: ['10.0.0.0/8'] },
      plans: { team: { maxKeys: 5, requestsPerMinute: { default: 100, max: 1000 }, requestsPerDay: { default: null, max: null }, maxConcurrentConnections: { default: 2, max: 4 } } },
      tracing: { enabled: false, headers: { 'x-tenant': 'a b' } },
      policy: { file: 'policy.yaml' }, // relative: resolved against this file's folder
    };
    writeFileSync(join(dir, 'config.yaml'), stringify(config));
    Object.assign(process.env, { KEYGATE_CONFIG: join(dir, 'config.yaml'), PORT: '8181', REDIS_URL: 'redis://127.0.0.1:6390', KEYGATE_ADMIN_TOKEN: 'serve-config-admin-token-0123' });

    const here = inspectForServe();
    expect(here.problems).toEqual([]);
    const received = await servedConfiguration();
    expect(received).toEqual({ config: here.config, policy: here.policy, tls: here.tls });
    // The overrides and defaults are there (so the comparison compares something).
    expect(received.config.server.port).toBe(8181);
    expect(received.config.policy.file).toBe(join(dir, 'policy.yaml'));
    expect(received.policy.routes[1]).toEqual({ method: '*', path: '/v1/public/**', public: true });
  });
});
