import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../../src/config/schema.ts';
import { CONFIG_DOC_FILE, configDoc } from '../../helpers/config-doc.ts';

describe('docs/configuration.md', () => {
  it('is what `npm run docs:config` generates from the schema and default.yaml (run it after changing either)', () => {
    expect(readFileSync(CONFIG_DOC_FILE, 'utf8')).toBe(configDoc());
  });

  it('lists every option of the schema', () => {
    const doc = configDoc();
    const leaves: string[] = [];
    const walk = (path: string, s: { properties?: Record<string, object> }) => {
      if (s.properties) for (const [k, child] of Object.entries(s.properties)) walk(path ? `${path}.${k}` : k, child);
      else leaves.push(path);
    };
    walk('', z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as object);
    expect(leaves.length).toBeGreaterThan(60);
    expect(leaves.filter((p) => p !== 'plans' && !doc.includes(`| \`${p}\` |`))).toEqual([]);
  });
});
