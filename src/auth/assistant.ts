import type { IncomingHttpHeaders } from 'node:http';
import type { KeyPolicy } from '../keys/types.ts';
import type { AssistantRule } from './policy.ts';
import { refuse, type StageRefusal } from './verify.ts';

// Voice-agent specific: a key with `allowedAssistants` may only address those assistants,
// and a request carrying an inline (transient) assistant needs `transientAssistant: true`.

/** The request's query as the rule reads it (split on `&`), and as parsers that also split on `;` read it. */
export interface QueryViews {
  query: URLSearchParams | null;
  /**
   * The query split on `;` as well as `&` (Rack 2, Go before 1.17, Python before 3.9.2), when it holds a raw `;`:
   * a field read differently this way names no single assistant. Null when there is no `;`.
   */
  semicolonQuery: URLSearchParams | null;
}

/** The two readings of a query string (without its `?`), or of none. */
export function queryViews(raw: string | null): QueryViews {
  if (raw === null) return { query: null, semicolonQuery: null };
  return { query: new URLSearchParams(raw), semicolonQuery: raw.includes(';') ? new URLSearchParams(raw.replaceAll(';', '&')) : null };
}

export interface AssistantSource extends QueryViews {
  params: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, on routes whose rule reads the body. */
  body: unknown;
}

/** A field that reads one way to keygate and may read another way to the upstream. */
const AMBIGUOUS = Symbol('ambiguous');
const ambiguous = refuse('malformed_request', 'The request names the assistant in a way the upstream may read otherwise (a ";" between query parameters, or its header listed in Connection, which removes it); send it plainly.');

/** Whether a Connection field lists `want` (a lower-case name, `_` folded to `-`): such a field never reaches the upstream. */
export const listedInConnection = (connection: string | undefined, want: string): boolean =>
  connection !== undefined && connection.split(',').some((t) => t.trim().toLowerCase().replaceAll('_', '-') === want);

function read(rule: AssistantRule, field: string, src: AssistantSource): unknown {
  switch (rule.from) {
    case 'path':
      return src.params[field];
    case 'query': {
      // A repeated parameter is ambiguous (Express reads an array, Flask the first): it names no single assistant.
      const all = src.query?.getAll(field) ?? [];
      // Read otherwise where `;` also separates parameters: which reading the upstream takes is unknown.
      const other = src.semicolonQuery?.getAll(field);
      if (other && (other.length !== all.length || other.some((v, i) => v !== all[i]))) return AMBIGUOUS;
      return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
    }
    case 'header': {
      // CGI-style servers (WSGI, PHP) read `X_Assistant_Id` as `X-Assistant-Id`: a header named either way counts,
      // and one named both ways is ambiguous (an array: no single assistant).
      const want = field.toLowerCase().replaceAll('_', '-');
      // Listed in Connection, the field is hop-by-hop and removed before forwarding: checked, it would not be
      // what the upstream reads.
      if (listedInConnection(src.headers.connection, want)) return AMBIGUOUS;
      const names = Object.keys(src.headers).filter((n) => n.replaceAll('_', '-') === want);
      return names.length === 0 ? undefined : names.length === 1 ? src.headers[names[0]!] : names.map((n) => src.headers[n]);
    }
    case 'body':
      return src.body !== null && typeof src.body === 'object' ? (src.body as Record<string, unknown>)[field] : undefined;
  }
}

export function checkAssistant(key: KeyPolicy, rule: AssistantRule, src: AssistantSource): StageRefusal | null {
  const transient = rule.transientField === undefined ? undefined : read(rule, rule.transientField, src);
  if (transient === AMBIGUOUS) return ambiguous;
  const inline = transient !== undefined && transient !== null;
  if (inline && !key.transientAssistant) return refuse('transient_assistant_not_allowed', 'This API key may not send an inline assistant configuration.');
  if (key.allowedAssistants === null) return null;
  const id = read(rule, rule.field, src);
  if (id === AMBIGUOUS) return ambiguous;
  // An inline assistant stands in for a named one only when none is named: the upstream receives both fields, and
  // one that prefers (or merges into) the named assistant would run it.
  if (inline && (id === undefined || id === null)) return null;
  if (typeof id !== 'string' || !key.allowedAssistants.includes(id)) {
    return refuse('assistant_not_allowed', 'This API key may not use this assistant.');
  }
  return null;
}
