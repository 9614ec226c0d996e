import type { IncomingHttpHeaders } from 'node:http';
import type { KeyPolicy } from '../keys/types.ts';
import type { AssistantRule } from './policy.ts';
import { refuse, type StageRefusal } from './verify.ts';

// Voice-agent specific: a key with `allowedAssistants` may only address those assistants,
// and a request carrying an inline (transient) assistant needs `transientAssistant: true`.

export interface AssistantSource {
  params: Record<string, string>;
  query: URLSearchParams | null;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, on routes whose rule reads the body. */
  body: unknown;
}

function read(rule: AssistantRule, field: string, src: AssistantSource): unknown {
  switch (rule.from) {
    case 'path':
      return src.params[field];
    case 'query': {
      // A repeated parameter is ambiguous (Express reads an array, Flask the first): it names no single assistant.
      const all = src.query?.getAll(field) ?? [];
      return all.length === 0 ? undefined : all.length === 1 ? all[0] : all;
    }
    case 'header': {
      // CGI-style servers (WSGI, PHP) read `X_Assistant_Id` as `X-Assistant-Id`: a header named either way counts,
      // and one named both ways is ambiguous (an array: no single assistant).
      const want = field.toLowerCase().replaceAll('_', '-');
      const names = Object.keys(src.headers).filter((n) => n.replaceAll('_', '-') === want);
      return names.length === 0 ? undefined : names.length === 1 ? src.headers[names[0]!] : names.map((n) => src.headers[n]);
    }
    case 'body':
      return src.body !== null && typeof src.body === 'object' ? (src.body as Record<string, unknown>)[field] : undefined;
  }
}

export function checkAssistant(key: KeyPolicy, rule: AssistantRule, src: AssistantSource): StageRefusal | null {
  const transient = rule.transientField === undefined ? undefined : read(rule, rule.transientField, src);
  if (transient !== undefined && transient !== null) {
    if (!key.transientAssistant) return refuse('transient_assistant_not_allowed', 'This API key may not send an inline assistant configuration.');
    return null;
  }
  if (key.allowedAssistants === null) return null;
  const id = read(rule, rule.field, src);
  if (typeof id !== 'string' || !key.allowedAssistants.includes(id)) {
    return refuse('assistant_not_allowed', 'This API key may not use this assistant.');
  }
  return null;
}
