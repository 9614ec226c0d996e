import type { IncomingHttpHeaders } from 'node:http';
import { visit } from 'jsonc-parser';
import { listedInConnection } from './assistant.ts';

// Assistant rules that read the body read it the way the upstream will, or refuse it. An upstream
// picks its parser by Content-Type, so a body keygate read as JSON must be one the upstream also reads as JSON
// (Express's urlencoded parser would find `&assistantId=...` inside a JSON string); and a member that appears
// twice means different things to different parsers (JSON.parse keeps the last, others the first), so a body
// that repeats a member the rule reads is refused.

/** `application/json` or `application/<anything>+json`, with at most a UTF-8 charset. */
const JSON_TYPE = /^application\/(?:[a-z0-9!#$&^_.-]+\+)?json$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type JsonBody = { ok: true; value: unknown } | { ok: false; message: string };

function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  if (!JSON_TYPE.test(type!)) return false;
  return params.every((p) => !p.startsWith('charset=') || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

/**
 * Top-level member names that make the body ambiguous: those of `names` that occur more than once, and
 * `__proto__`, which JSON.parse keeps as a member but an upstream's Object.assign or merge turns into a prototype
 * (one that could carry an inline assistant keygate never read).
 */
function repeated(text: string, names: ReadonlySet<string>): string[] {
  const seen = new Set<string>();
  const twice: string[] = [];
  let depth = 0;
  const enter = () => void depth++;
  const leave = () => void depth--;
  visit(text, {
    onObjectBegin: enter,
    onObjectEnd: leave,
    onArrayBegin: enter,
    onArrayEnd: leave,
    onObjectProperty: (name) => {
      if (depth !== 1) return;
      if (name === '__proto__') twice.push(name);
      if (!names.has(name)) return;
      if (seen.has(name)) twice.push(name);
      seen.add(name);
    },
  });
  return twice;
}

/**
 * The body as the assistant rule may read it: a JSON content type, UTF-8, valid JSON, none of `names` repeated.
 * An empty body reads as `{}` (no assistant named), whatever its type.
 */
export function readJsonBody(headers: IncomingHttpHeaders, bytes: Buffer, names: ReadonlySet<string>): JsonBody {
  if (bytes.length === 0) return { ok: true, value: {} };
  if (!isJsonType(headers['content-type'])) return { ok: false, message: 'This route reads the assistant from the body, which must be JSON (Content-Type: application/json).' };
  // Listed in Connection, they would be removed before forwarding: the upstream would pick its parser without them.
  if (listedInConnection(headers.connection, 'content-type') || listedInConnection(headers.connection, 'content-encoding')) {
    return { ok: false, message: 'This route reads the assistant from the body: its Content-Type cannot be listed in Connection, which removes it.' };
  }
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return { ok: false, message: 'This route reads the assistant from the body, which must not be compressed (Content-Encoding).' };
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    return { ok: false, message: 'The request body is not valid UTF-8 JSON.' };
  }
  const twice = repeated(text, names);
  if (twice.length) return { ok: false, message: `The request body is ambiguous: ${twice.join(', ')} (repeated, or a prototype).` };
  return { ok: true, value };
}
