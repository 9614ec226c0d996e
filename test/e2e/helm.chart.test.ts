import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { createTenant, proxied } from '../helpers/api.ts';
import { cli, root, startKeygate } from '../helpers/keygate.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { run, scratchDir, tool, typecheck } from '../helpers/tools.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

// The chart as helm renders it: `helm lint --strict` and `helm template` over a matrix of values,
// every rendered object checked against the Kubernetes schemas (kubernetes-models' validators, and TypeScript's
// excess-property check against its types, which catches a misspelt field), every rendered keygate
// configuration run through `keygate config check` as the container would run it, the installs of docs/kubernetes.md
// started for real, and values the schema must refuse.

const chart = join(root, 'helm', 'keygate');
let helm: string;

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

interface Rendered {
  name: string;
  objects: K8sObject[];
}

const scratch = scratchDir('helm');
let counter = 0;

function valuesFile(values: object): string {
  const file = join(scratch, `values-${++counter}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

/** `helm template` with these values (or raw `--set` arguments); throws with helm's output when it fails. */
async function template(name: string, values: object | string[]): Promise<Rendered> {
  const args = Array.isArray(values) ? values : ['-f', valuesFile(values)];
  const r = await run(helm, ['template', 'kg', chart, '--namespace', 'voice', ...args]);
  if (r.code !== 0) throw new Error(`helm template (${name}) failed: ${r.stderr}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(r.stdout, { uniqueKeys: true })) {
    expect(doc.errors.map((e) => e.message), name).toEqual([]);
    const obj = doc.toJS() as K8sObject | null;
    if (obj) objects.push(obj);
  }
  return { name, objects };
}

const one = (r: Rendered, kind: string): K8sObject => {
  const found = r.objects.filter((o) => o.kind === kind);
  expect(found.length, `${r.name}: one ${kind}`).toBe(1);
  return found[0]!;
};
const containers = (r: Rendered): any[] => one(r, 'Deployment').spec.template.spec.containers;
const keygateContainer = (r: Rendered): any => containers(r).find((c) => c.name === 'keygate');

// ---- the Kubernetes schemas --------------------------------------------------------------------------------

/** Where kubernetes-models keeps an apiVersion's models (the ServiceMonitor CRD in its prometheus-operator set). */
function modelModule(apiVersion: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

async function validateObject(obj: K8sObject): Promise<void> {
  const models = (await import(modelModule(obj.apiVersion))) as Record<string, new (data: object) => { validate(): void }>;
  const Model = models[obj.kind];
  if (!Model) throw new Error(`no Kubernetes schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

/** Every object as a typed constant, for tsc: it rejects unknown fields, which the validators let through. */
function typedSource(renders: Rendered[]): { source: string; count: number } {
  const imports = new Set<string>();
  const constants: string[] = [];
  for (const r of renders) {
    for (const obj of r.objects) {
      const type = `${obj.apiVersion.replace(/[^A-Za-z0-9]/g, '_')}_${obj.kind}`;
      imports.add(`import type { I${obj.kind} as ${type} } from '${modelModule(obj.apiVersion)}';`);
      constants.push(`// ${r.name}\nexport const o${constants.length}: ${type} = ${JSON.stringify(obj, null, 1)};`);
    }
  }
  return { source: `${[...imports].join('\n')}\n\n${constants.join('\n\n')}\n`, count: constants.length };
}

// ---- keygate's configuration, as the container reads it ---------------------------------------------------

/** Stand-in content of a Secret the user manages (existingSecret). */
const EXISTING_SECRET = { 'admin-token': 'existing-secret-admin-token', 'redis-url': 'redis://user:pw@redis-from-secret:6379' };
/** Stand-in content of the other Secrets the user manages, by name (tracing.headersSecret). */
const OTHER_SECRETS: Record<string, Record<string, string>> = { 'otel-export': { 'otlp-headers': 'authorization=Bearer%20collector-token,x-tenant=voice' } };

/**
 * The keygate container's environment and files: the ConfigMap's files in a directory standing for the
 * /etc/keygate mount, environment values and secretKeyRefs resolved from the rendered Secret (or the user's).
 */
function containerSetup(r: Rendered, overrides: { secret?: Record<string, string> } = {}): { env: Record<string, string>; config: any; dir: string } {
  const dir = join(scratch, `etc-keygate-${++counter}`);
  mkdirSync(dir);
  const configMap = one(r, 'ConfigMap');
  for (const [file, text] of Object.entries(configMap.data as Record<string, string>)) {
    writeFileSync(join(dir, file), text.replaceAll('/etc/keygate/', `${dir}/`));
  }
  const secret = r.objects.find((o) => o.kind === 'Secret')?.stringData ?? overrides.secret ?? EXISTING_SECRET;
  const env: Record<string, string> = {};
  for (const e of keygateContainer(r).env as any[]) {
    if (e.value !== undefined) env[e.name] = e.value === '/etc/keygate/config.yaml' ? join(dir, 'config.yaml') : e.value;
    else {
      const ref = e.valueFrom.secretKeyRef;
      const value = (OTHER_SECRETS[ref.name] ?? secret)[ref.key];
      if (value === undefined && !ref.optional) throw new Error(`${r.name}: ${e.name} needs secret key ${ref.key}`);
      if (value !== undefined) env[e.name] = value;
    }
  }
  return { env, config: parse(configMap.data['config.yaml'], { uniqueKeys: true }), dir };
}

/** `keygate config check` in the image's working directory (it holds config/), with the container's environment. */
async function configCheck(r: Rendered): Promise<any> {
  const { env } = containerSetup(r);
  const result = await run(process.execPath, [cli, 'config', 'check'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } });
  expect({ case: r.name, code: result.code, stderr: result.stderr }).toEqual({ case: r.name, code: 0, stderr: '' });
  return JSON.parse(result.stdout);
}

// ---- the matrix --------------------------------------------------------------------------------------------

// There is no public image: every install names the one it built and pushed.
const image = { repository: 'registry.example.com/keygate', tag: '0.1.0' };
const modes = {
  sidecar: { mode: 'sidecar', image, app: { image: 'registry.example.com/voice-api:1.4.2', port: 3000 } },
  gateway: { mode: 'gateway', image, gateway: { upstreamUrl: 'http://voice-api.default.svc:80' } },
};
const stores = {
  standalone: { redis: { mode: 'standalone', url: 'redis://redis:6379' } },
  sentinel: { redis: { mode: 'sentinel', sentinel: { name: 'voice', hosts: [{ host: 'sentinel-0.sentinel', port: 26379 }, { host: 'sentinel-1.sentinel', port: 26379 }] } } },
  cluster: { redis: { mode: 'cluster', cluster: { nodes: ['redis://redis-0.redis:6379', 'redis://redis-1.redis:6379'] } } },
};
const secretsChoice = {
  chartSecret: { secrets: { adminToken: 'chart-admin-token-0123456789', signingSecret: 'chart-signing-secret-0123' } },
  existingSecret: { existingSecret: 'keygate-secrets' },
};
const extras = {
  plain: {},
  monitored: {
    serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
    networkPolicy: { enabled: true, opsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
  },
};

const matrix: Array<{ name: string; values: any }> = [];
for (const [m, mv] of Object.entries(modes)) {
  for (const [s, sv] of Object.entries(stores)) {
    for (const [c, cv] of Object.entries(secretsChoice)) {
      for (const [e, ev] of Object.entries(extras)) matrix.push({ name: `${m}/${s}/${c}/${e}`, values: { ...mv, ...sv, ...cv, ...ev } });
    }
  }
}
// Beyond the matrix: the embedded store, an autoscaler, and a policy and configuration of the user's own.
matrix.push(
  { name: 'sidecar/embedded', values: { ...modes.sidecar, redis: { mode: 'none' }, replicaCount: 1, ...secretsChoice.chartSecret } },
  {
    name: 'gateway/traced',
    values: { ...modes.gateway, ...stores.standalone, ...secretsChoice.chartSecret, tracing: { enabled: true, endpoint: 'http://otel-collector.observability:4318/v1/traces', serviceName: 'voice-gateway', sampler: { ratio: 0.25, parentBased: false }, headersSecret: { name: 'otel-export', key: 'otlp-headers' } } },
  },
  { name: 'gateway/autoscaled', values: { ...modes.gateway, ...stores.standalone, ...secretsChoice.chartSecret, autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 6 } } },
  {
    name: 'gateway/own-policy-and-config',
    values: {
      ...modes.gateway,
      ...stores.sentinel,
      ...secretsChoice.chartSecret,
      policy: { defaultAction: 'deny', routes: [{ method: 'GET', path: '/v1/calls/**', permission: 'calls:read' }] },
      config: { server: { port: 8443, trustedProxies: ['10.0.0.0/8'] }, redis: { sentinelName: 'from-config', keyPrefix: 'voice:' }, logging: { level: 'debug' } },
    },
  },
);

let matrixRenders: Promise<Rendered[]> | null = null;
/** Every matrix case rendered once, for the tests that look at them. */
const renders = (): Promise<Rendered[]> => (matrixRenders ??= (async () => {
  const out: Rendered[] = [];
  for (const { name, values } of matrix) out.push(await template(name, values));
  return out;
})());

/** The `helm install` commands of docs/kubernetes.md, as arguments to `helm template` (the secret's shell substitution fixed). */
function readmeInstalls(): string[][] {
  const readme = readFileSync(join(root, 'docs', 'kubernetes.md'), 'utf8');
  const commands = [...readme.matchAll(/^helm install (?:[^\n]*\\\n)*[^\n]*/gm)].map((m) => m[0].replace(/\\\n/g, ' '));
  return commands.map((command) => {
    const words = [...command.replace('$(openssl rand -hex 24)', 'readme-admin-token-0123456789').matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((w) => w[1] ?? w[2] ?? w[3]!);
    // helm install NAME CHART ...flags
    expect(words.slice(0, 4), command).toEqual(['helm', 'install', words[2], 'helm/keygate']);
    return words.slice(4);
  });
}

// ---- tests -------------------------------------------------------------------------------------------------

let redis: RedisServer;
let upstream: Upstream;
beforeAll(async () => {
  helm = tool('helm');
  [redis, upstream] = await Promise.all([startRedis(), startUpstream()]);
});
afterAll(async () => {
  await Promise.all([redis?.close(), upstream?.close()]);
});

describe('helm/keygate rendered by helm', () => {
  it('passes helm lint --strict with every matrix case', async () => {
    for (const { name, values } of matrix) {
      const r = await run(helm, ['lint', '--strict', chart, '-f', valuesFile(values)]);
      expect({ name, code: r.code, out: r.stdout.split('\n').filter((l) => /\[(WARNING|ERROR)\]/.test(l)) }).toEqual({ name, code: 0, out: [] });
    }
  });

  it('renders every matrix case into objects the Kubernetes schemas accept, and configurations keygate accepts', async () => {
    for (const [i, r] of (await renders()).entries()) {
      const { name, values } = matrix[i]!;
      for (const obj of r.objects) {
        try {
          await validateObject(obj);
        } catch (err) {
          throw new Error(`${name}: ${obj.kind} ${obj.metadata.name}: ${(err as Error).message}`, { cause: err });
        }
      }

      // What each case must hold.
      const kinds = r.objects.map((o) => o.kind).sort();
      expect(kinds.includes('Secret'), name).toBe(!values.existingSecret);
      expect(kinds.includes('ServiceMonitor'), name).toBe(Boolean(values.serviceMonitor?.enabled));
      expect(kinds.includes('NetworkPolicy'), name).toBe(Boolean(values.networkPolicy?.enabled));
      expect(kinds.includes('HorizontalPodAutoscaler'), name).toBe(Boolean(values.autoscaling?.enabled));
      const deployment = one(r, 'Deployment');
      expect(deployment.spec.replicas, name).toBe(values.autoscaling?.enabled ? undefined : (values.replicaCount ?? 2));
      expect(kinds.includes('PodDisruptionBudget'), name).toBe(deployment.spec.replicas !== 1);
      const kgc = keygateContainer(r);
      expect(kgc.securityContext, name).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      const pod = deployment.spec.template.spec;
      expect(pod.securityContext, `${name}: nothing pod-wide`).toBeUndefined();
      // No Kubernetes API token in the pod, under the chart's own ServiceAccount.
      expect({ sa: pod.serviceAccountName, automount: pod.automountServiceAccountToken }, name).toEqual({ sa: 'kg-keygate', automount: false });
      expect(one(r, 'ServiceAccount').automountServiceAccountToken, name).toBe(false);
      // The preStop delay, then keygate's drain: the grace period covers both and the in-flight timeout.
      expect(kgc.lifecycle, name).toEqual({ preStop: { exec: { command: ['sleep', '5'] } } });
      expect(pod.terminationGracePeriodSeconds, name).toBe(5 + 0 + 25 + 5);
      // Gateway replicas spread over nodes and zones; a sidecar follows the app's placement.
      expect((pod.topologySpreadConstraints ?? []).map((c: any) => c.topologyKey), name).toEqual(
        values.mode === 'gateway' ? ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'] : [],
      );
      if (values.mode === 'sidecar') {
        const app = containers(r).find((c) => c.name === 'app');
        expect(app.securityContext, `${name}: the app's own security context`).toBeUndefined();
      }
      if (values.networkPolicy?.enabled) {
        const rules = one(r, 'NetworkPolicy').spec.ingress as any[];
        // With the ServiceMonitor on, the scrape is admitted too (Prometheus's pods, on the internal port).
        expect(rules.map((rule) => rule.ports[0].port)).toEqual(values.serviceMonitor?.enabled ? ['http', 'ops', 'ops'] : ['http', 'ops']);
        expect(rules[1].from, `${name}: the internal port only from opsFrom`).toEqual(values.networkPolicy.opsFrom);
        if (values.serviceMonitor?.enabled) {
          expect(rules[2].from, `${name}: the scrape`).toEqual([{ namespaceSelector: {}, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }]);
        }
      }

      const effective = await configCheck(r);
      const ports = Object.fromEntries((kgc.ports as any[]).map((p) => [p.name, p.containerPort]));
      expect({ port: effective.server.port, opsPort: effective.server.opsPort }, name).toEqual({ port: ports.http, opsPort: ports.ops });
      expect(effective.upstream.url, name).toBe(values.mode === 'sidecar' ? 'http://127.0.0.1:3000' : values.gateway.upstreamUrl);
      const store = values.redis.mode;
      expect({ url: effective.redis.url !== null, sentinels: effective.redis.sentinels !== null, cluster: effective.redis.clusterNodes !== null }, name).toEqual({
        url: store === 'standalone',
        sentinels: store === 'sentinel',
        cluster: store === 'cluster',
      });
      expect(effective.policy.file, name).toBe(values.policy ? `${scratch}/etc-keygate-${counter}/policy.yaml` : join(root, 'config', 'policy.yaml'));
      // Probes and the scrape come to the pod's address: the chart opens the internal listener there.
      expect(effective.server.opsHost, name).toBe('0.0.0.0');
    }
  }, 120_000);

  it('renders objects whose every field is in the Kubernetes types (tsc excess-property check)', async () => {
    const { source, count } = typedSource(await renders());
    expect(count).toBeGreaterThan(matrix.length * 4);
    const file = join(scratch, 'rendered.ts');
    writeFileSync(file, source);
    expect(await typecheck([file])).toEqual({ code: 0, output: '' });
    // The check bites: a misspelt field in any object is an error.
    writeFileSync(file, source.replace('"readOnlyRootFilesystem"', '"readOnlyRootFileSystem"'));
    expect((await typecheck([file])).output).toMatch(/readOnlyRootFileSystem\W+ does not exist in type 'ISecurityContext'/);
  }, 120_000);

  it('merges `config` into the generated configuration as one document: a key set there wins, nothing twice', async () => {
    const r = await template('own config', matrix.find((c) => c.name === 'gateway/own-policy-and-config')!.values);
    const text = one(r, 'ConfigMap').data['config.yaml'] as string;
    expect(() => parse(text, { uniqueKeys: true })).not.toThrow();
    const config = parse(text);
    expect(config.server).toEqual({ port: 8443, opsHost: '0.0.0.0', opsPort: 9090, trustedProxies: ['10.0.0.0/8'] });
    expect(config.redis).toMatchObject({ sentinelName: 'from-config', keyPrefix: 'voice:', sentinels: [{ host: 'sentinel-0.sentinel', port: 26379 }, { host: 'sentinel-1.sentinel', port: 26379 }] });
    expect(config.logging).toEqual({ level: 'debug' });
    expect(keygateContainer(r).ports.find((p: any) => p.name === 'http').containerPort).toBe(8443);
    expect(parse(one(r, 'ConfigMap').data['policy.yaml'])).toMatchObject({ defaultAction: 'deny' });

    // A secret given in `config` wins over the chart's Secret, so the chart leaves that variable out.
    const own = await template('config redis.url', { ...modes.sidecar, ...stores.standalone, ...secretsChoice.chartSecret, config: { redis: { url: 'redis://configured:6379' } } });
    expect((keygateContainer(own).env as any[]).map((e) => e.name)).not.toContain('REDIS_URL');
    expect(containerSetup(own).config.redis.url).toBe('redis://configured:6379');
  });

  it("defaults to the image's config/policy.yaml, and both installs of docs/kubernetes.md let a `*` key through", async () => {
    const installs = readmeInstalls();
    expect(installs).toHaveLength(2);
    for (const [i, args] of installs.entries()) {
      const r = await template(`docs/kubernetes.md install ${i + 1}`, args);
      expect(one(r, 'ConfigMap').data['policy.yaml'], 'no policy of its own').toBeUndefined();
      await configCheck(r);
      // Started as the container starts it, but on this machine's Redis, upstream and free ports (the
      // documented Redis hosts and Cluster do not exist here; config check above covered that part).
      const { env, config, dir } = containerSetup(r, { secret: EXISTING_SECRET });
      delete config.redis;
      writeFileSync(join(dir, 'config.yaml'), stringify(config));
      const kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, env: { ...env, PORT: '0', OPS_PORT: '0', UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, KEYGATE_ADMIN_TOKEN: 'test-admin-token-0123456789' } });
      try {
        const { key } = await createTenant(kg, { name: `readme-${i}` });
        for (const path of ['/v1/calls/1', '/v1/anything/else']) expect((await proxied(kg, path, { 'x-api-key': key })).status, path).toBe(200);
      } finally {
        await kg.stop();
      }
    }
  }, 60_000);

  it('refuses, through values.schema.json, values keygate could not run with', async () => {
    const base = { ...modes.sidecar, ...stores.standalone, ...secretsChoice.chartSecret };
    const refused: Array<[string, object, RegExp]> = [
      ['the embedded store with two replicas', { ...base, redis: { mode: 'none' }, replicaCount: 2 }, /replicaCount/],
      ['the embedded store with an autoscaler', { ...base, redis: { mode: 'none' }, replicaCount: 1, autoscaling: { enabled: true } }, /autoscaling/],
      ['an unknown mode', { ...base, mode: 'mesh' }, /mode/],
      ['gateway mode without an upstream URL', { ...base, mode: 'gateway' }, /upstreamUrl/],
      ['a misspelt value', { ...base, replicas: 3 }, /replicas/],
      ['a policy field keygate does not know', { ...base, policy: { defaultAction: 'allow', rutes: [] } }, /rutes/],
      ['a Redis URL of another scheme', { ...base, redis: { mode: 'standalone', url: 'http://redis:6379' } }, /redis/],
      // keygate would exit 78 on these at start-up (admin.token and upstream.signingSecret need 16 characters).
      ['a short admin token', { ...base, secrets: { adminToken: 'hunter2' } }, /adminToken/],
      ['a short signing secret', { ...base, secrets: { adminToken: 'chart-admin-token-0123456789', signingSecret: 'short' } }, /signingSecret/],
      ['a negative preStop delay', { ...base, shutdown: { preStopSeconds: -1 } }, /preStopSeconds/],
      ['tracing on without an endpoint', { ...base, tracing: { enabled: true } }, /endpoint/],
      ['a tracing endpoint that is not a URL', { ...base, tracing: { enabled: true, endpoint: 'otel-collector:4318' } }, /endpoint/],
      ['a sampling ratio above 1', { ...base, tracing: { enabled: true, endpoint: 'http://otel:4318/v1/traces', sampler: { ratio: 10 } } }, /ratio/],
      ['a misspelt tracing value', { ...base, tracing: { enabled: true, endpoint: 'http://otel:4318/v1/traces', sampleRatio: 0.5 } }, /sampleRatio/],
    ];
    for (const [what, values, mentions] of refused) {
      const r = await run(helm, ['template', 'kg', chart, '-f', valuesFile(values)]);
      expect(r.code, what).not.toBe(0);
      expect(r.stderr, what).toContain('values don\'t meet the specifications of the schema');
      expect(r.stderr, what).toMatch(mentions);
    }
  });

  it('fails without an image repository, saying which value and how to get an image', async () => {
    const { image: _none, ...values } = { ...modes.gateway, ...stores.standalone, ...secretsChoice.chartSecret };
    const r = await run(helm, ['template', 'kg', chart, '-f', valuesFile(values)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('image.repository is required');
    expect(r.stderr).toContain('docker build');
  });

  it('renders tracing into the configuration and the export headers from a Secret, in both Deployments, and keygate exports with them', async () => {
    const tracing = (endpoint: string) => ({ enabled: true, endpoint, serviceName: 'voice-gateway', sampler: { ratio: 1, parentBased: false }, headersSecret: { name: 'otel-export', key: 'otlp-headers' } });
    const headersEnv = { name: 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', valueFrom: { secretKeyRef: { name: 'otel-export', key: 'otlp-headers' } } };

    // Off by default: no tracing section, no variable.
    const off = await template('tracing off', { ...modes.gateway, ...stores.standalone, ...secretsChoice.chartSecret });
    expect(containerSetup(off).config.tracing).toBeUndefined();
    expect((keygateContainer(off).env as any[]).map((e) => e.name)).not.toContain('OTEL_EXPORTER_OTLP_TRACES_HEADERS');
    expect((await configCheck(off)).tracing.enabled).toBe(false);

    // On: the section in the ConfigMap (no header value in it), the headers from the user's Secret.
    const on = await template('tracing on', { ...modes.gateway, ...stores.standalone, ...secretsChoice.chartSecret, tracing: tracing('http://otel-collector.observability:4318/v1/traces') });
    expect(containerSetup(on).config.tracing).toEqual({ enabled: true, endpoint: 'http://otel-collector.observability:4318/v1/traces', serviceName: 'voice-gateway', sampler: { ratio: 1, parentBased: false } });
    expect(one(on, 'ConfigMap').data['config.yaml']).not.toContain('collector-token');
    expect(keygateContainer(on).env).toContainEqual(headersEnv);
    expect((await configCheck(on)).tracing).toMatchObject({ enabled: true, endpoint: 'http://otel-collector.observability:4318/v1/traces', serviceName: 'voice-gateway', sampler: { ratio: 1, parentBased: false } });
    // The authorizer's Deployment carries them too.
    const authz = await template('tracing on, authz', { mode: 'authz', image, gateway: { upstreamUrl: 'http://voice-api.default.svc:80' }, ...stores.standalone, ...secretsChoice.chartSecret, tracing: tracing('http://otel-collector.observability:4318/v1/traces') });
    expect(keygateContainer(authz).env).toContainEqual(headersEnv);
    expect(parse(one(authz, 'ConfigMap').data['config.yaml']).tracing).toMatchObject({ enabled: true, sampler: { ratio: 1 } });
    // A `tracing` key in `config` wins over the chart's values, key by key.
    const own = await template('tracing in config', { ...modes.gateway, ...stores.standalone, ...secretsChoice.chartSecret, tracing: tracing('http://otel:4318/v1/traces'), config: { tracing: { sampler: { ratio: 0.5 } } } });
    expect(containerSetup(own).config.tracing.sampler).toEqual({ ratio: 0.5, parentBased: false });

    // Started as the container starts it, exporting to a collector on this machine: the spans arrive with the
    // service name and the headers the Secret holds.
    const exports: Array<{ path: string; headers: IncomingHttpHeaders; body: Buffer }> = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        exports.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
    try {
      const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
      const r = await template('tracing on, started', { ...modes.gateway, ...stores.standalone, ...secretsChoice.chartSecret, tracing: tracing(endpoint) });
      const { env, config, dir } = containerSetup(r);
      delete config.redis;
      config.tracing.exportDelayMs = 100;
      writeFileSync(join(dir, 'config.yaml'), stringify(config));
      const kg = await startKeygate({ redisUrl: redis.url, upstream: upstream.url, env: { ...env, PORT: '0', OPS_PORT: '0', UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, KEYGATE_ADMIN_TOKEN: 'test-admin-token-0123456789' } });
      try {
        const { key } = await createTenant(kg, { name: 'traced' });
        expect((await proxied(kg, '/v1/calls/1', { 'x-api-key': key })).status).toBe(200);
        const deadline = Date.now() + 10_000;
        while (exports.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      } finally {
        await kg.stop();
      }
      expect(exports.length).toBeGreaterThan(0);
      for (const e of exports) {
        expect(e.path).toBe('/v1/traces');
        expect(e.headers).toMatchObject({ authorization: 'Bearer collector-token', 'x-tenant': 'voice', 'content-type': 'application/x-protobuf' });
      }
      expect(Buffer.concat(exports.map((e) => e.body)).includes('voice-gateway')).toBe(true);
    } finally {
      collector.close();
    }
  }, 60_000);

  it("passes the sidecar app container's own fields through as given", async () => {
    const app = {
      image: 'registry.example.com/voice-api:1.4.2',
      port: 3000,
      command: ['node'],
      args: ['server.js', '--port', '3000'],
      env: [{ name: 'MODE', value: 'prod' }],
      envFrom: [{ secretRef: { name: 'voice-api-secrets' } }],
      volumeMounts: [{ name: 'models', mountPath: '/models', readOnly: true }],
      volumes: [{ name: 'models', persistentVolumeClaim: { claimName: 'models' } }],
      resources: { requests: { cpu: '500m', memory: '256Mi' } },
      livenessProbe: { httpGet: { path: '/health', port: 'app' } },
      readinessProbe: { httpGet: { path: '/ready', port: 'app' }, periodSeconds: 3 },
      startupProbe: { tcpSocket: { port: 'app' } },
      lifecycle: { preStop: { exec: { command: ['sleep', '2'] } } },
    };
    const r = await template('sidecar passthrough', { ...modes.sidecar, ...stores.standalone, ...secretsChoice.chartSecret, app });
    for (const obj of r.objects) await validateObject(obj);
    const container = containers(r).find((c) => c.name === 'app');
    const { image: _i, port: _p, volumes, ...fields } = app;
    expect(container).toMatchObject(fields);
    expect(one(r, 'Deployment').spec.template.spec.volumes).toEqual(expect.arrayContaining(volumes));
  });

  it('uses only .Values paths that exist in values.yaml (helm renders a misspelt one as empty)', () => {
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const missing: string[] = [];
    for (const name of ['_helpers.tpl', 'authz.yaml', 'serviceaccount.yaml', 'configmap.yaml', 'deployment.yaml', 'hpa.yaml', 'networkpolicy.yaml', 'pdb.yaml', 'secret.yaml', 'service.yaml', 'servicemonitor.yaml', 'NOTES.txt']) {
      const text = readFileSync(join(chart, 'templates', name), 'utf8');
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
});
