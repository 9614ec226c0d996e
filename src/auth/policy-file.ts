import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, issuePath, readConfigFile, type ReadFile } from '../config/load.ts';
import { PERMISSION } from './permissions.ts';
import { compilePolicy, type Policy, type PolicySpec } from './policy.ts';

// The route policy file: its schema and its reader. What it yields is plain data (policy.ts compiles it), so the
// process that checks keygate's configuration can read it and hand it over (server/serve-config.ts).

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

/** Reads and checks the policy file; problems throw a ConfigError, which start-up turns into exit 78. */
export function readPolicySpec(file: string, read: ReadFile = readConfigFile): PolicySpec {
  let doc: unknown;
  try {
    doc = parseYaml(read(file)) ?? {};
  } catch (err) {
    throw new ConfigError([{ path: 'policy.file', message: `${file}: ${(err as Error).message}` }]);
  }
  const parsed = policySchema.safeParse(doc);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => ({ path: `policy(${file}).${issuePath(i.path)}`, message: i.message })));
  }
  return parsed.data;
}

/** Reads, checks and compiles the policy file. */
export const loadPolicy = (file: string): Policy => compilePolicy(readPolicySpec(file));
