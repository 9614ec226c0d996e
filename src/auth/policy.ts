import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, issuePath } from '../config/load.ts';
import { PERMISSION } from './permissions.ts';

// Route policy: ordered routes, first match wins; compiled once at start-up.

const assistantRule = z.strictObject({
  from: z.enum(['path', 'query', 'header', 'body']),
  field: z.string().min(1),
  transientField: z.string().min(1).optional(),
});

const methodName = z.string().regex(/^([A-Z]+|\*)$/, 'an HTTP method in capitals, or *');

const routeSchema = z.strictObject({
  method: z.union([methodName, z.array(methodName).min(1)]).default('*'),
  path: z
    .string()
    .regex(/^\/[^?#\s]*$/, 'must start with / and hold no query')
    .refine((p) => !p.split('/').slice(0, -1).includes('**'), '** may only be the last segment'),
  permission: z.string().regex(PERMISSION).optional(),
  public: z.boolean().default(false),
  assistant: assistantRule.optional(),
});

export const policySchema = z.strictObject({
  defaultAction: z.enum(['allow', 'deny']).default('deny'),
  /** What a key must hold to reach an unmatched route under `defaultAction: allow`: a narrowed key stays narrow. */
  defaultPermission: z.string().regex(PERMISSION).default('*'),
  /** Route paths match case-insensitively unless this is true (Express and most routers ignore case). */
  caseSensitive: z.boolean().default(false),
  routes: z.array(routeSchema).default([]),
});

export type AssistantRule = z.infer<typeof assistantRule>;
export type RouteSpec = z.infer<typeof routeSchema>;

export interface CompiledRoute {
  methods: Set<string> | null;
  pattern: RegExp;
  paramNames: string[];
  permission: string | null;
  public: boolean;
  assistant: AssistantRule | null;
  path: string;
}

export interface RouteMatch {
  route: CompiledRoute;
  params: Record<string, string>;
}

export interface Policy {
  defaultAction: 'allow' | 'deny';
  defaultPermission: string;
  /** `path` is the canonical path (http/target.ts); `HEAD` matches the routes of `GET`, as routers run them. */
  match(method: string, path: string): RouteMatch | null;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * `/v1/calls/:id` → one segment per `:name` or `*`; a final `**` matches the rest (including nothing); a trailing
 * slash matches the same route.
 */
function compilePath(path: string, caseSensitive: boolean): { pattern: RegExp; paramNames: string[] } {
  const paramNames: string[] = [];
  const parts = path.split('/').slice(1);
  let source = '';
  for (const part of parts) {
    if (part === '**') {
      source += '(?:/.*)?';
    } else if (part === '*') {
      source += '/[^/]+';
    } else if (part.startsWith(':')) {
      paramNames.push(part.slice(1));
      source += '/([^/]+)';
    } else {
      source += `/${escape(part)}`;
    }
  }
  return { pattern: new RegExp(`^${source || '/'}/?$`, caseSensitive ? '' : 'i'), paramNames };
}

export function compilePolicy(spec: z.infer<typeof policySchema>): Policy {
  const routes: CompiledRoute[] = spec.routes.map((r) => {
    const listed = r.method === '*' || (Array.isArray(r.method) && r.method.includes('*')) ? null : new Set(Array.isArray(r.method) ? r.method : [r.method]);
    // Routers answer HEAD with the GET handler (Express, find-my-way), so a GET route's permission covers HEAD.
    if (listed?.has('GET')) listed.add('HEAD');
    return { methods: listed, ...compilePath(r.path, spec.caseSensitive), permission: r.permission ?? null, public: r.public, assistant: r.assistant ?? null, path: r.path };
  });
  return {
    defaultAction: spec.defaultAction,
    defaultPermission: spec.defaultPermission,
    match(method, path) {
      for (const route of routes) {
        if (route.methods && !route.methods.has(method)) continue;
        const m = route.pattern.exec(path);
        if (!m) continue;
        const params: Record<string, string> = {};
        for (let i = 0; i < route.paramNames.length; i++) params[route.paramNames[i]!] = safeDecode(m[i + 1]!);
        return { route, params };
      }
      return null;
    },
  };
}

/** Reads and compiles the policy file; problems exit 78 like any configuration problem. */
export function loadPolicy(file: string): Policy {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8')) ?? {};
  } catch (err) {
    throw new ConfigError([{ path: 'policy.file', message: `${file}: ${(err as Error).message}` }]);
  }
  const parsed = policySchema.safeParse(doc);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ path: `policy(${file}).${issuePath(i.path)}`, message: i.message })));
  }
  return compilePolicy(parsed.data);
}
