import { dirname, isAbsolute, resolve } from 'node:path';
import { readConfigFile, type ReadFile } from './read-file.ts';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { compileCidrs } from '../http/client-ip.ts';
import { SESSION_TOKEN_PREFIX } from '../keys/session-token.ts';
import { configSchema, secretPaths, type Config } from './schema.ts';
import { overlayOtelEnv } from './otel-env.ts';
import { ConfigError, type ConfigProblem } from './errors.ts';
import { packageRoot } from './package-root.ts';

export { ConfigError, EX_CONFIG, type ConfigProblem } from './errors.ts';
export { packageRoot } from './package-root.ts';

type Env = Record<string, string | undefined>;

// The common options, settable without a file (twelve-factor style).
export const envOverrides: ReadonlyArray<[env: string, path: string, kind: 'string' | 'number' | 'list' | 'signingKeys']> = [
  ['HOST', 'server.host', 'string'],
  ['PORT', 'server.port', 'number'],
  ['OPS_HOST', 'server.opsHost', 'string'],
  ['OPS_PORT', 'server.opsPort', 'number'],
  ['AUTHZ_HOST', 'server.authzHost', 'string'],
  ['AUTHZ_PORT', 'server.authzPort', 'number'],
  ['KEYGATE_WORKERS', 'server.workers', 'number'],
  ['AUTHZ_TRUSTED_GATEWAYS', 'authz.trustedGateways', 'list'],
  ['UPSTREAM_URL', 'upstream.url', 'string'],
  ['UPSTREAM_TIMEOUT_MS', 'upstream.timeoutMs', 'number'],
  ['REDIS_URL', 'redis.url', 'string'],
  ['KEYGATE_ADMIN_TOKEN', 'admin.token', 'string'],
  ['KEYGATE_SIGNING_SECRET', 'upstream.signingSecret', 'string'],
  ['KEYGATE_PEPPER', 'keys.pepper', 'string'],
  // `id:secret,id:secret`: the first signs new session tokens, every one verifies.
  ['KEYGATE_TOKEN_SIGNING_KEYS', 'tokens.signingKeys', 'signingKeys'],
  ['KEYGATE_POLICY', 'policy.file', 'string'],
  ['LOG_LEVEL', 'logging.level', 'string'],
];

/**
 * Options naming files. A relative path is resolved against the directory of the configuration file that
 * names it (as nginx and Caddy resolve theirs), so keygate finds its files whatever directory it is started
 * from; one set by an environment variable is resolved against the working directory, as a shell user expects;
 * a built-in default against the package's config/ folder, where default.yaml is.
 */
export const filePaths = ['policy.file', 'tls.cert', 'tls.key', 'tls.clientCa', 'upstream.tls.ca', 'upstream.tls.cert', 'upstream.tls.key'] as const;

const listOf = (raw: string): string[] => raw.split(',').map((s) => s.trim()).filter(Boolean);
/** `id:secret` pairs; an entry without a colon becomes one with an empty id, which the schema refuses by path. */
const signingKeysOf = (raw: string) =>
  listOf(raw).map((entry) => {
    const colon = entry.indexOf(':');
    return colon < 0 ? { id: '', secret: entry } : { id: entry.slice(0, colon), secret: entry.slice(colon + 1) };
  });

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Objects merge key by key; arrays and scalars replace. */
function overlay(base: Tree, top: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(top)) {
    out[k] = isTree(v) && isTree(out[k]) ? overlay(out[k] as Tree, v) : v;
  }
  return out;
}

function setPath(tree: Tree, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    if (!isTree(node[part])) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts.at(-1)!] = value;
}

function getPath(tree: Tree, path: string): unknown {
  let node: unknown = tree;
  for (const part of path.split('.')) node = isTree(node) ? node[part] : undefined;
  return node;
}

/** Resolves the relative file options a tree sets against `dir`. */
function resolveFiles(tree: Tree, dir: string): Tree {
  for (const path of filePaths) {
    const v = getPath(tree, path);
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) setPath(tree, path, resolve(dir, v));
  }
  return tree;
}

export { MAX_CONFIG_FILE_BYTES, readConfigFile, type ReadFile } from './read-file.ts';

function readYaml(file: string, problems: ConfigProblem[], label: string, read: ReadFile): Tree {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    problems.push({ path: label, message: `cannot read ${file}: ${(err as Error).message}` });
    return {};
  }
  try {
    const doc: unknown = parseYaml(text) ?? {};
    if (!isTree(doc)) throw new Error('top level must be a mapping');
    return resolveFiles(doc, dirname(resolve(file)));
  } catch (err) {
    problems.push({ path: label, message: `${file}: ${(err as Error).message}` });
    return {};
  }
}

export function issuePath(path: ReadonlyArray<PropertyKey>): string {
  return path.length ? path.map(String).join('.') : '(root)';
}

function semanticProblems(c: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (!c.plans[c.defaultPlan]) out.push({ path: 'defaultPlan', message: `no plan named "${c.defaultPlan}" in plans` });
  for (const f of ['privatePrefix', 'publicPrefix'] as const) {
    if (c.keys[f].startsWith(SESSION_TOKEN_PREFIX)) out.push({ path: `keys.${f}`, message: `must not start with ${SESSION_TOKEN_PREFIX}, the session tokens' prefix` });
  }
  const kids = c.tokens.signingKeys.map((k) => k.id);
  if (new Set(kids).size !== kids.length) out.push({ path: 'tokens.signingKeys', message: 'each signing key needs its own id' });
  if (c.keys.privatePrefix === c.keys.publicPrefix) {
    out.push({ path: 'keys.publicPrefix', message: 'must differ from keys.privatePrefix' });
  }
  if (c.keys.defaultExpiryDays === null ? !c.keys.allowNeverExpire : !c.keys.allowedExpiryDays.includes(c.keys.defaultExpiryDays)) {
    out.push({ path: 'keys.defaultExpiryDays', message: 'must be one of keys.allowedExpiryDays (or null with allowNeverExpire)' });
  }
  if (Boolean(c.tls.cert) !== Boolean(c.tls.key)) out.push({ path: 'tls', message: 'tls.cert and tls.key go together' });
  if (c.tls.clientCa && !c.tls.cert) out.push({ path: 'tls.clientCa', message: 'needs tls.cert and tls.key' });
  const upstreamTls = c.upstream.tls;
  if (Boolean(upstreamTls.cert) !== Boolean(upstreamTls.key)) out.push({ path: 'upstream.tls', message: 'upstream.tls.cert and upstream.tls.key go together' });
  if ((upstreamTls.ca || upstreamTls.cert) && !c.upstream.url.startsWith('https:')) {
    out.push({ path: 'upstream.tls', message: 'needs an https upstream (upstream.url): a plain http upstream has no TLS to configure' });
  }
  const stores = [c.redis.url, c.redis.sentinels, c.redis.clusterNodes].filter((v) => v !== null).length;
  if (stores > 1) out.push({ path: 'redis', message: 'set only one of redis.url, redis.sentinels, redis.clusterNodes' });
  // The embedded store lives in one process: a second worker would hold other keys, limits and sessions.
  if (stores === 0 && c.server.workers !== 1) {
    out.push({ path: 'server.workers', message: 'must be 1 with the embedded store (workers share keys, limits and revocations through Redis: set redis.url, redis.sentinels or redis.clusterNodes)' });
  }
  for (const [name, plan] of Object.entries(c.plans)) {
    for (const field of ['requestsPerMinute', 'requestsPerDay', 'maxConcurrentConnections'] as const) {
      const { default: d, max } = plan[field];
      if (max !== null && (d === null || d > max)) {
        out.push({ path: `plans.${name}.${field}.default`, message: 'must be set and at most max when max is set' });
      }
    }
  }
  out.push(...authzProblems(c));
  return out;
}

/** What the authorizer listener cannot enforce is refused at start-up (docs/gateways/README.md). */
function authzProblems(c: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const [path, cidrs] of [['server.trustedProxies', c.server.trustedProxies], ['tls.trustXfccFrom', c.tls.trustXfccFrom], ['authz.trustedGateways', c.authz.trustedGateways], ['tracing.trustedPeers', c.tracing.trustedPeers ?? []]] as const) {
    try {
      compileCidrs(cidrs);
    } catch (err) {
      out.push({ path, message: (err as Error).message });
    }
  }
  if (c.server.authzPort === null) return out;
  if (c.authz.trustedGateways.length === 0) {
    out.push({ path: 'authz.trustedGateways', message: 'must list the gateways that call the authorizer (server.authzPort is set)' });
  }
  if (c.authz.websocket === 'handshake') {
    // The gateway reports neither when a session ends nor how long it lasted: caps on either cannot be enforced.
    for (const [name, plan] of Object.entries(c.plans)) {
      for (const field of ['maxConcurrentConnections', 'sessionMinutesPerMonth'] as const) {
        const { default: d, max } = plan[field];
        if (d !== null || max !== null) {
          out.push({ path: `plans.${name}.${field}`, message: 'must be null with authz.websocket: handshake (the gateway does not report sessions, so the authorizer cannot cap them)' });
        }
      }
    }
  }
  return out;
}

export interface LoadOptions {
  env?: Env;
  /** Defaults to `<package>/config/default.yaml`. */
  defaultFile?: string;
  readFile?: ReadFile;
}

/** What checking a configuration found: every problem, and the configuration as far as it could be read. */
export interface ConfigInspection {
  problems: ConfigProblem[];
  /**
   * The configuration with every invalid option replaced by its default, so that the checks that need a whole
   * configuration (plans, TLS pairs, the route policy file) still run and report in the same pass; null when even
   * that does not parse.
   */
  config: Config | null;
}

function deletePath(tree: Tree, path: ReadonlyArray<PropertyKey>): boolean {
  let node: unknown = tree;
  for (const part of path.slice(0, -1)) node = isTree(node) ? node[String(part)] : undefined;
  const last = path.at(-1);
  if (!isTree(node) || last === undefined || !(String(last) in node)) return false;
  delete node[String(last)];
  return true;
}

/**
 * Replaces what the schema refused with the default at the same path (or, where there is none, drops it, and
 * then the object that lacks it) until the rest parses: every valid option is kept, each refused one stands in
 * for its default, so the whole-configuration checks run on what was written.
 */
function salvage(tree: Tree): Config | null {
  const copy = structuredClone(tree);
  const defaults = configSchema.parse({}) as unknown as Tree;
  for (let round = 0; round < 8; round++) {
    const parsed = configSchema.safeParse(copy);
    if (parsed.success) return parsed.data;
    let changed = false;
    for (const issue of parsed.error.issues) {
      // An unknown key is reported on its parent, naming the keys.
      const keys = (issue as { keys?: string[] }).keys;
      if (issue.code === 'unrecognized_keys' && keys) {
        for (const k of keys) changed = deletePath(copy, [...issue.path, k]) || changed;
        continue;
      }
      const path = issue.path.map(String).join('.');
      const fallback = path ? getPath(defaults, path) : undefined;
      if (fallback !== undefined && JSON.stringify(getPath(copy, path)) !== JSON.stringify(fallback)) {
        setPath(copy, path, structuredClone(fallback));
        changed = true;
        continue;
      }
      for (let depth = issue.path.length; depth > 0; depth--) {
        if (deletePath(copy, issue.path.slice(0, depth))) {
          changed = true;
          break;
        }
      }
    }
    if (!changed) return null;
  }
  return null;
}

/** default.yaml ← $KEYGATE_CONFIG ← environment, checked in one pass: every problem, never only the first kind. */
export function inspectConfig(opts: LoadOptions = {}): ConfigInspection {
  const env = opts.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const read = opts.readFile ?? readConfigFile;
  let tree = readYaml(opts.defaultFile ?? resolve(packageRoot, 'config/default.yaml'), problems, '(default.yaml)', read);
  if (env.KEYGATE_CONFIG) tree = overlay(tree, readYaml(env.KEYGATE_CONFIG, problems, 'KEYGATE_CONFIG', read));
  const fromEnv = new Map<string, string>();
  for (const [name, path, kind] of envOverrides) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    fromEnv.set(path, name);
    const value = kind === 'list' ? listOf(raw) : kind === 'signingKeys' ? signingKeysOf(raw) : kind === 'number' && /^\d+$/.test(raw) ? Number(raw) : raw;
    setPath(tree, path, (filePaths as readonly string[]).includes(path) ? resolve(value as string) : value);
  }
  problems.push(...overlayOtelEnv(env, (path, value, name) => (fromEnv.set(path, name), setPath(tree, path, value))));
  const parsed = configSchema.safeParse(tree);
  let config: Config | null = parsed.success ? parsed.data : null;
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((i: z.core.$ZodIssue) => {
      const path = issuePath(i.path);
      const source = fromEnv.get(path);
      return { path: source ? `${path} (from ${source})` : path, message: i.message };
    }));
    config = salvage(tree);
  }
  if (config) {
    // A default that names a file is relative to the defaults' folder, as if default.yaml named it (policy.yaml
    // ships there).
    resolveFiles(config as unknown as Tree, resolve(packageRoot, 'config'));
    // A check on a value already reported as invalid would only repeat it.
    const reported = problems.map((p) => p.path.replace(/ \(from \w+\)$/, ''));
    const overlaps = (path: string) => reported.some((r) => r === path || r.startsWith(`${path}.`) || path.startsWith(`${r}.`));
    problems.push(...semanticProblems(config).filter((p) => !overlaps(p.path)));
  }
  return { problems, config };
}

/** default.yaml ← $KEYGATE_CONFIG ← environment; validated once, every problem reported together. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const { problems, config } = inspectConfig(opts);
  if (problems.length || !config) throw new ConfigError(problems);
  return config;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//[redacted]@');
}

/** A copy safe to print: secrets replaced, passwords cut out of URLs. */
export function redactConfig(c: Config): Config {
  const copy = structuredClone(c) as unknown as Tree;
  for (const path of secretPaths) {
    const parts = path.split('.');
    const parent = parts.slice(0, -1).reduce<Tree>((n, p) => n[p] as Tree, copy);
    const key = parts.at(-1)!;
    const v = parent[key];
    if (v === null || v === undefined) continue;
    parent[key] =
      typeof v === 'string' && /^rediss?:/.test(v)
        ? redactUrl(v)
        : Array.isArray(v)
          ? v.map((u: unknown) => (typeof u === 'string' ? redactUrl(u) : { ...(u as Tree), secret: '[redacted]' }))
          : '[redacted]';
  }
  return copy as unknown as Config;
}
