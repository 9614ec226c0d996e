// Route policy: ordered routes, first match wins; compiled once at start-up. The policy file's schema and reader
// are in policy-file.ts: `serve` receives the policy checked, as data, from the process that checks its
// configuration (server/serve-config.ts), and compiles it here without loading zod or yaml.

/** How an assistant-scoped key's assistant id is read from a request (`assistant` on a route). */
export interface AssistantRule {
  from: 'path' | 'query' | 'header' | 'body';
  field: string;
  transientField?: string | undefined;
}

/** A route as the policy file gives it, defaults applied (policy-file.ts checks it). */
export interface RouteSpec {
  method: string | string[];
  path: string;
  permission?: string | undefined;
  public: boolean;
  assistant?: AssistantRule | undefined;
}

/** The policy file, checked, with its defaults applied. */
export interface PolicySpec {
  defaultAction: 'allow' | 'deny';
  /** What a key must hold to reach an unmatched route under `defaultAction: allow`: a narrowed key stays narrow. */
  defaultPermission: string;
  /** Route paths match case-insensitively unless this is true (Express and most routers ignore case). */
  caseSensitive: boolean;
  routes: RouteSpec[];
}

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

export function compilePolicy(spec: PolicySpec): Policy {
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
