import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isPair, isScalar, parseDocument, type Pair, type YAMLMap } from 'yaml';
import { z } from 'zod';
import { envOverrides, filePaths, packageRoot } from '../../src/config/load.ts';
import { configSchema, secretPaths } from '../../src/config/schema.ts';

// docs/configuration.md: every option of the configuration schema (src/config/schema.ts) with its type, default
// and environment variable, described by the comments of config/default.yaml (which a unit test keeps equal to
// the schema's defaults). `npm run docs:config` writes it; a test fails when the committed file is not what
// this generates, so an option added to the schema shows up here by running it again.

export const CONFIG_DOC_FILE = join(packageRoot, 'docs', 'configuration.md');

type Json = { type?: string | string[]; anyOf?: Json[]; enum?: unknown[]; properties?: Record<string, Json>; additionalProperties?: Json | boolean; items?: Json; default?: unknown; minimum?: number; maximum?: number; exclusiveMinimum?: number; pattern?: string; minLength?: number; format?: string };

/** A short type: `integer 0–65535`, `string | null`, `"refuse" | "handshake"`, `list of string`. */
function typeOf(s: Json): string {
  if (s.anyOf) return [...new Set(s.anyOf.map(typeOf))].join(' | ');
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' | ');
  const t = Array.isArray(s.type) ? s.type.join(' | ') : (s.type ?? 'any');
  if (t === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  const range = [
    s.minimum !== undefined ? `≥ ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : '',
    s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? `≤ ${s.maximum}` : '',
    s.minLength !== undefined ? `≥ ${s.minLength} chars` : '',
  ].filter(Boolean);
  return range.length ? `${t} (${range.join(', ')})` : t;
}

/** The comments of default.yaml by option path; an option without one shares the comment of the option above. */
function comments(): Map<string, string> {
  const doc = parseDocument(readFileSync(join(packageRoot, 'config', 'default.yaml'), 'utf8'));
  const out = new Map<string, string>();
  const walk = (map: YAMLMap, prefix: string, inherited: string) => {
    let last = inherited;
    map.items.forEach((item, i) => {
      if (!isPair(item) || !isScalar((item as Pair).key)) return;
      const pair = item as Pair<{ value: string; commentBefore?: string | null }>;
      const path = prefix + String(pair.key!.value);
      // The document's first comment belongs to the file, not to its first option.
      // yaml attaches the comment above a map's first option to the map itself.
      const own = (i === 0 ? (prefix === '' ? null : (pair.key!.commentBefore ?? map.commentBefore)) : pair.key!.commentBefore) ?? null;
      const text = own ? own.split('\n').map((l) => l.trim()).join(' ').trim() : '';
      if (text) last = text;
      out.set(path, text || last);
      if (isMap(pair.value)) walk(pair.value, `${path}.`, out.get(path)!);
    });
  };
  walk(doc.contents as YAMLMap, '', '');
  return out;
}

const envOf = new Map(envOverrides.map(([env, path]) => [path, env]));
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const shown = (v: unknown) => (v === undefined ? '' : `\`${JSON.stringify(v)}\``);

export function configDoc(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json;
  const notes = comments();
  const sections: string[] = [];
  for (const [section, node] of Object.entries(schema.properties ?? {})) {
    const rows: string[] = [];
    // A comment shared by several options is printed once, on the first of them.
    let previous = '';
    const visit = (path: string, s: Json) => {
      if (s.properties) {
        for (const [k, child] of Object.entries(s.properties)) visit(`${path}.${k}`, child);
        return;
      }
      if (typeof s.additionalProperties === 'object' && path === 'plans') {
        // A map of named plans: its fields once, under `plans.<name>`.
        for (const [k, child] of Object.entries(s.additionalProperties.properties ?? {})) visit(`plans.<name>.${k}`, child);
        return;
      }
      const example = path.replace('<name>', 'free');
      const flags = [
        envOf.get(path) ? `env \`${envOf.get(path)}\`` : '',
        (secretPaths as readonly string[]).includes(path) ? 'secret (redacted by `config check`)' : '',
        (filePaths as readonly string[]).includes(path) ? 'a file: relative to the configuration file that names it' : '',
      ].filter(Boolean);
      const note = notes.get(example) ?? notes.get(path) ?? '';
      const shared = note !== '' && note === previous;
      previous = note;
      const description = [shared ? '(described above)' : note, flags.length ? `(${flags.join('; ')})` : ''].filter(Boolean).join(' ');
      const def = path.startsWith('plans.') ? '' : shown(s.default);
      rows.push(`| \`${path}\` | ${cell(typeOf(s))} | ${cell(def)} | ${cell(description)} |`);
    };
    visit(section, node);
    sections.push([`## \`${section}\``, '', '| option | type | default | description |', '|---|---|---|---|', ...rows].join('\n'));
  }
  const plans = JSON.stringify(configSchema.parse({}).plans);
  return `# Configuration reference

<!-- Generated by \`npm run docs:config\` (test/helpers/config-doc.ts) from the configuration schema
(src/config/schema.ts) and the comments of config/default.yaml. Do not edit: change those and run it again. -->

keygate reads [config/default.yaml](../config/default.yaml) (every option, with its default), overlays the file
named by \`KEYGATE_CONFIG\`, then the environment variables named below. Objects merge key by key; lists and
scalars replace. Everything is validated at start-up and every problem is reported at once, with its path
(exit code 78); \`keygate config check\` does the same without starting and prints the effective configuration,
secrets redacted.

Environment variables: ${envOverrides.map(([env, path]) => `\`${env}\` (${path})`).join(', ')}.

The built-in plans (\`plans\`; replace them with your own): \`${plans}\`.

${sections.join('\n\n')}
`;
}

if (import.meta.main) {
  writeFileSync(CONFIG_DOC_FILE, configDoc());
  process.stdout.write(`wrote ${CONFIG_DOC_FILE}\n`);
}
