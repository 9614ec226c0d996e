import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/ops/metrics.ts';

// `metrics.tenantLabel`: the per-request series carry a tenant label only when it is on.

async function exposition(tenantLabel: boolean): Promise<string> {
  const m = createMetrics({ tenantLabel });
  m.countRequest('public', 'GET', 200, 'ten_a');
  m.countRequest('public', 'GET', 201, 'ten_a');
  m.countRequest('public', 'GET', 404, null);
  m.decision('allowed', 'ten_a');
  m.decision('invalid_api_key', null);
  m.decision('insufficient_permissions', 'ten_a', 'management');
  return m.registry.metrics();
}

describe('per-tenant labels', () => {
  it('label requests and decisions by tenant with metrics.tenantLabel on', async () => {
    const text = await exposition(true);
    expect(text).toContain('keygate_requests_total{listener="public",method="GET",status_class="2xx",tenant="ten_a"} 2');
    expect(text).toContain('keygate_requests_total{listener="public",method="GET",status_class="4xx",tenant=""} 1');
    expect(text).toContain('keygate_auth_decisions_total{decision="allowed",listener="public",tenant="ten_a"} 1');
    expect(text).toContain('keygate_auth_decisions_total{decision="invalid_api_key",listener="public",tenant=""} 1');
    expect(text).toContain('keygate_auth_decisions_total{decision="insufficient_permissions",listener="management",tenant="ten_a"} 1');
  });

  it('leave the tenant out with it off', async () => {
    const text = await exposition(false);
    expect(text).toContain('keygate_requests_total{listener="public",method="GET",status_class="2xx"} 2');
    expect(text).toContain('keygate_auth_decisions_total{decision="allowed",listener="public"} 1');
    expect(text).toContain('keygate_auth_decisions_total{decision="insufficient_permissions",listener="management"} 1');
    expect(text).not.toContain('tenant=');
  });
});
