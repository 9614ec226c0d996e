import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { root } from '../../helpers/keygate.ts';

// No helm binary can be installed here, so the chart is checked piece by piece: values against the schema,
// every .Values path used by a template against values.yaml, and every template's YAML outside the actions.

const chart = join(root, 'helm', 'keygate');
const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(chart, 'values.schema.json'), 'utf8')) as object;
const templates = readdirSync(join(chart, 'templates')).map((name) => ({ name, text: readFileSync(join(chart, 'templates', name), 'utf8') }));

describe('helm/keygate', () => {
  it('has values.yaml that satisfies values.schema.json, and the schema rejects bad values', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    expect(validate(values), JSON.stringify(validate.errors)).toBe(true);
    for (const bad of [{ mode: 'mesh' }, { redis: { mode: 'memcached' } }, { ports: { public: 'http', ops: 9090 } }, { surprise: true }]) {
      expect(validate({ ...structuredClone(values), ...bad })).toBe(false);
    }
  });

  it('uses only .Values paths that exist in values.yaml', () => {
    const missing: string[] = [];
    for (const { name, text } of templates) {
      for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        let node: unknown = values;
        for (const part of m[1]!.slice(1).split('.')) {
          node = node !== null && typeof node === 'object' && part in node ? (node as Record<string, unknown>)[part] : undefined;
          if (node === undefined) break;
        }
        if (node === undefined) missing.push(`${name}: .Values${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('parses as YAML outside the template actions, every document a named Kubernetes object', () => {
    const kinds: string[] = [];
    for (const { name, text } of templates.filter((t) => t.name.endsWith('.yaml'))) {
      const stripped = text
        .split('\n')
        .filter((line) => !/^\s*\{\{.*\}\}\s*$/.test(line)) // lines that are only an action
        .map((line) => line.replace(/\{\{.*?\}\}/g, 'X')) // inline actions become a scalar
        .join('\n');
      for (const doc of parseAllDocuments(stripped)) {
        expect(doc.errors, `${name}: ${doc.errors.map((e) => e.message).join('; ')}`).toEqual([]);
        const obj = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } } | null;
        if (obj === null) continue;
        expect(obj.apiVersion, name).toBeTruthy();
        expect(obj.metadata?.name, name).toBeTruthy();
        kinds.push(obj.kind!);
      }
    }
    expect(kinds.sort()).toEqual(['ConfigMap', 'Deployment', 'Deployment', 'PodDisruptionBudget', 'Secret', 'Service', 'Service', 'Service', 'ServiceMonitor']);
  });

  it('covers both modes, probes on the internal port, and a read-only non-root container', () => {
    const deployment = templates.find((t) => t.name === 'deployment.yaml')!.text;
    const helpers = templates.find((t) => t.name === '_helpers.tpl')!.text;
    expect(deployment).toContain('{{- if eq .Values.mode "sidecar" }}');
    expect(helpers).toContain('http://127.0.0.1:{{ .Values.app.port }}');
    expect(helpers).toContain('.Values.gateway.upstreamUrl');
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      expect(deployment).toMatch(new RegExp(`${probe}:\\n\\s+httpGet:\\n\\s+path: /(healthz|readyz)\\n\\s+port: ops`));
    }
    expect(values.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(values.podSecurityContext).toMatchObject({ runAsNonRoot: true });
  });
});
