import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { root } from '../../helpers/keygate.ts';

// The chart's mode `authz` (a keygate Deployment and the authorizer's Service, for a mesh or gateway to
// ask), checked piece by piece like the rest of the chart (test/unit/helm/chart.test.ts: no helm binary here).

const chart = join(root, 'helm', 'keygate');
const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<string, any>;
const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as object;
const template = (name: string) => readFileSync(join(chart, 'templates', name), 'utf8');

describe('helm/keygate mode authz', () => {
  it('is a mode the schema accepts, with the gateways it trusts required to be listed', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    expect(validate({ ...structuredClone(values), mode: 'authz' }), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...structuredClone(values), mode: 'authz', authz: { ...values.authz, trustedGateways: [] } })).toBe(false);
    expect(validate({ ...structuredClone(values), authz: { ...values.authz, port: 'authz' } })).toBe(false);
  });

  it('renders its own Deployment and the authorizer Service in authz mode only, and the usual Deployment in the others', () => {
    const authz = template('authz.yaml');
    expect(authz.split('\n')[0]).toBe('{{- if eq .Values.mode "authz" }}');
    expect(authz.trimEnd().split('\n').at(-1)).toBe('{{- end }}');
    const usual = template('deployment.yaml');
    expect(usual.split('\n')[0]).toBe('{{- if ne .Values.mode "authz" }}');
    expect(usual.trimEnd().split('\n').at(-1)).toBe('{{- end }}');
  });

  it('turns the authorizer listener on through the environment, names its port, and keeps the probes on the internal port', () => {
    const authz = template('authz.yaml');
    expect(authz).toMatch(/- name: AUTHZ_PORT\n\s+value: \{\{ \.Values\.authz\.port \| quote \}\}/);
    expect(authz).toMatch(/- name: AUTHZ_TRUSTED_GATEWAYS\n\s+value: \{\{ join "," \.Values\.authz\.trustedGateways \| quote \}\}/);
    expect(authz).toMatch(/- name: authz\n\s+containerPort: \{\{ \.Values\.authz\.port \}\}/);
    expect(authz).toMatch(/name: \{\{ include "keygate\.fullname" \. \}\}-authz[\s\S]*targetPort: authz/);
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(authz).toMatch(new RegExp(`${probe}:\\n\\s+httpGet:\\n\\s+path: /(healthz|readyz)\\n\\s+port: ops`));
    }
    expect(authz).not.toContain('keygate.upstreamUrl'); // no upstream is required
  });
});
