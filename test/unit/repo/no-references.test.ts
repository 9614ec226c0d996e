import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Comments give reasons, not references: a new maintainer has neither the product brief's numbered sections
// nor the tracker's numbers, so a comment, test or document that cites a section of the one or a number of
// the other tells them nothing. Cite a file that is in the repository (docs/…) or state the rule itself.
// Standards keep their sections ("RFC 9110 §9.1"): those documents are public and stable.

const root = join(import.meta.dirname, '..', '..', '..');
const FOLDERS = ['src', 'test', 'bench', 'docs', 'helm', 'config', '.ci'];

// Built from parts so that this file does not match itself.
const SECTION = '\u00a7';
const PATTERNS: Array<[string, RegExp]> = [
  ['a spec citation', new RegExp(`\\bSPEC\\b\\s*${SECTION}?`)],
  ['a section sign not after an RFC number', new RegExp(`(?<!RFC \\d+ ?)${SECTION}\\s*\\d`)],
  ['an issue number', new RegExp(`\\b${'iss'}ue\\s*#?\\d+`, 'i')],
];

/** Every tracked text file under the folders, as git sees it (so the test reads what a commit holds). */
function trackedTextFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--', ...FOLDERS], { cwd: root, encoding: 'utf8' });
  return out.split('\0').filter((f) => f && !/\.(png|jpe?g|gif|ico|webp|woff2?|gz|tgz|zip|pdf)$/i.test(f));
}

export function referencesIn(text: string): Array<{ line: number; kind: string; text: string }> {
  const found: Array<{ line: number; kind: string; text: string }> = [];
  text.split('\n').forEach((line, i) => {
    for (const [kind, re] of PATTERNS) if (re.test(line)) found.push({ line: i + 1, kind, text: line.trim() });
  });
  return found;
}

describe('comments give reasons, not references', () => {
  it('finds each kind of reference (the check can fail)', () => {
    expect(referencesIn(`// see ${'SP'}EC ${SECTION}5`).map((r) => r.kind)).toContain('a spec citation');
    expect(referencesIn(`// as ${SECTION}3 says`).map((r) => r.kind)).toEqual(['a section sign not after an RFC number']);
    expect(referencesIn(`// fixed in ${'Iss'}ue 17`).map((r) => r.kind)).toEqual(['an issue number']);
    expect(referencesIn(`// (${'iss'}ue #13)`).map((r) => r.kind)).toEqual(['an issue number']);
    expect(referencesIn(`// RFC 9110 ${SECTION}9.1 makes methods case-sensitive`)).toEqual([]);
    expect(referencesIn('const MAX_SPECS = 1_024; // an issuer 3 times')).toEqual([]);
  });

  it('no tracked file under src, test, bench, docs, helm, config or .ci cites the brief or an issue', () => {
    const files = trackedTextFiles();
    expect(files.length).toBeGreaterThan(100);
    const found: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8');
      if (text.includes('\0')) continue; // a binary file git tracks without one of the extensions above
      for (const r of referencesIn(text)) found.push(`${f}:${r.line} (${r.kind}): ${r.text}`);
    }
    expect(found).toEqual([]);
  });
});
