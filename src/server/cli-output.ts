// How the CLI prints: a human rendering by default, or exactly one JSON document on stdout (`--json`), so a
// script can pipe any command into `jq` without splitting the output.

/** What every command produces: the JSON document and the lines a person reads. */
export interface Output {
  json: unknown;
  human: string;
  /** A notice for people only (stderr, human mode); never mixed into the JSON document. */
  notice?: string;
}

/** Exit codes (docs/cli.md); the numbers follow sysexits(3) where one fits. */
export const EXIT = {
  ok: 0,
  /** keygate answered with an error envelope (validation, not found, limits, ...). */
  refused: 1,
  /** The command line is wrong: unknown command, missing or malformed option. */
  usage: 64,
  /** keygate could not be reached, did not answer in time, or answered something that is not keygate's. */
  unavailable: 69,
  /** No admin token, or keygate refused it. */
  noPermission: 77,
  /** The configuration (or route policy) is invalid. */
  config: 78,
} as const;

/** A failure the CLI reports in one line and maps to an exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly code: string | null;
  constructor(exitCode: number, message: string, code: string | null = null) {
    super(message);
    this.exitCode = exitCode;
    this.code = code;
  }
}

type Cell = string | number | boolean | null | undefined;

function cell(v: Cell): string {
  if (v === null || v === undefined || v === '') return '-';
  return String(v);
}

/** Columns padded to their widest cell; the header in capitals. */
export function table(headers: string[], rows: Cell[][]): string {
  const text = rows.map((r) => r.map(cell));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers.map((h) => h.toUpperCase())), ...text.map(line)].join('\n');
}

/** A record as `field  value` lines. */
export function fields(entries: Array<[string, Cell]>): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`).join('\n');
}

/** `2026-12-06T19:55:12.345Z` → `2026-12-06 19:55Z`: enough to read in a table. */
export function when(iso: string | null | undefined): string | null {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z` : null;
}

export function print(out: Output, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(out.json, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${out.human}\n`);
  if (out.notice) process.stderr.write(`\n${out.notice}\n`);
}
