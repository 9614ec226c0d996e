import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../../src/config/load.ts';

// The authorizer listener is off by default, needs the gateways it answers, and a configuration that
// asks it for what it cannot enforce (WebSocket session caps) is refused at start-up with every problem listed.

function problems(config: Record<string, unknown>, env: Record<string, string> = {}): string[] {
  const file = join(mkdtempSync(join(tmpdir(), 'keygate-authz-config-')), 'config.yaml');
  writeFileSync(file, stringify(config));
  try {
    loadConfig({ env: { KEYGATE_CONFIG: file, ...env } });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

describe('authorizer configuration', () => {
  it('is off by default and on with server.authzPort (or AUTHZ_PORT) and the gateways it answers', () => {
    const c = loadConfig({ env: {} });
    expect(c.server.authzPort).toBeNull();
    expect(c.authz).toEqual({ trustedGateways: [], requestBody: false, websocket: 'refuse' });
    expect(problems({ authz: { trustedGateways: ['10.0.0.0/8'] } }, { AUTHZ_PORT: '8081' })).toEqual([]);
    const fromEnv = loadConfig({ env: { AUTHZ_PORT: '8081', AUTHZ_TRUSTED_GATEWAYS: '10.0.0.0/8, 172.16.0.0/12' } });
    expect(fromEnv.server.authzPort).toBe(8081);
    expect(fromEnv.authz.trustedGateways).toEqual(['10.0.0.0/8', '172.16.0.0/12']);
  });

  it('refuses an authorizer that would answer nobody in particular, and CIDRs that are not', () => {
    expect(problems({ server: { authzPort: 8081 } })).toEqual([expect.stringMatching(/^authz\.trustedGateways: must list the gateways/)]);
    expect(problems({ server: { authzPort: 8081 }, authz: { trustedGateways: ['10.0.0.0/8', 'gateway.local'] } })).toEqual([expect.stringMatching(/^authz\.trustedGateways: not an IP address or CIDR: gateway\.local/)]);
  });

  it('refuses authz.websocket: handshake while any plan caps WebSocket sessions or their minutes, naming each', () => {
    const found = problems({ server: { authzPort: 8081 }, authz: { trustedGateways: ['10.0.0.0/8'], websocket: 'handshake' } });
    expect(found).toEqual([
      expect.stringMatching(/^plans\.free\.maxConcurrentConnections: must be null with authz\.websocket: handshake/),
      expect.stringMatching(/^plans\.free\.sessionMinutesPerMonth: /),
      expect.stringMatching(/^plans\.pro\.maxConcurrentConnections: /),
      expect.stringMatching(/^plans\.pro\.sessionMinutesPerMonth: /),
    ]);
    const none = { maxConcurrentConnections: { default: null, max: null }, sessionMinutesPerMonth: { default: null, max: null } };
    expect(problems({ server: { authzPort: 8081 }, authz: { trustedGateways: ['10.0.0.0/8'], websocket: 'handshake' }, plans: { free: none, pro: none } })).toEqual([]);
    // Without the authorizer listener there is nothing to refuse.
    expect(problems({ authz: { websocket: 'handshake' } })).toEqual([]);
  });
});
