import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { readBody } from '../proxy/body.ts';
import { checkAssistant } from './assistant.ts';
import type { Authorizer } from './authorize.ts';
import { credentialOf } from './credential.ts';
import { checkOrigin } from './origin.ts';
import type { RouteMatch } from './policy.ts';
import { checkTransport } from './transport.ts';
import { deny, type Authenticator, type Denial, type Identity } from './verify.ts';

// SPEC §5 steps 4–11 as one straight line: credential → verify → mTLS → origin → route policy → assistant.
// Each stage returns a Denial or passes; the line stays synchronous unless the store or a body must be read.

export interface Grant {
  ok: true;
  identity: Identity;
  match: RouteMatch | null;
  /** The exact body bytes, when an assistant rule had to read them (forwarded as they came). */
  body: Buffer | null;
}

/** A refusal, with the identity when the key itself was valid (for usage and access logs). */
export type Refusal = Denial & { identity?: Identity };

export type Outcome = Grant | Refusal;

export interface PipelineDeps {
  authenticate: Authenticator;
  authorize: Authorizer;
  xfccFrom: BlockList | null;
  maxAssistantBodyBytes: number;
}

const tooLarge = deny('payload_too_large', 'The request body is too large for this route.');
const notJson = deny('malformed_request', 'This route needs a JSON body.');
const noUpgradeBody = deny('assistant_not_allowed', 'This route reads the assistant from a body, which an upgrade does not have.');

export function createPipeline(deps: PipelineDeps) {
  const { authenticate, authorize } = deps;

  function refuse(denial: Denial, identity: Identity): Refusal {
    return { ...denial, identity };
  }

  async function withBody(req: IncomingMessage, identity: Identity, match: RouteMatch, query: URLSearchParams | null): Promise<Outcome> {
    const body = await readBody(req, deps.maxAssistantBodyBytes);
    if (body === 'too_large') return refuse(tooLarge, identity);
    let parsed: unknown;
    try {
      parsed = body.length ? JSON.parse(body.toString('utf8')) : {};
    } catch {
      return refuse(notJson, identity);
    }
    const denial = checkAssistant(identity.key.policy, match.route.assistant!, { params: match.params, query, headers: req.headers, body: parsed });
    return denial ? refuse(denial, identity) : { ok: true, identity, match, body };
  }

  function afterIdentity(req: IncomingMessage, identity: Identity, path: string, query: string | null, upgrade: boolean): Outcome | Promise<Outcome> {
    const key = identity.key.policy;
    const denial = checkTransport(key, req, deps.xfccFrom) ?? checkOrigin(key, req.headers.origin);
    if (denial) return refuse(denial, identity);
    const route = authorize(key, req.method ?? 'GET', path);
    if (!route.ok) return refuse(route, identity);
    const rule = route.match?.route.assistant;
    if (!rule) return { ok: true, identity, match: route.match, body: null };
    const params = query === null ? null : new URLSearchParams(query);
    if (rule.from === 'body') {
      // A WebSocket upgrade has no body to read the assistant from.
      if (upgrade) return refuse(noUpgradeBody, identity);
      return withBody(req, identity, route.match!, params);
    }
    const refused = checkAssistant(key, rule, { params: route.match!.params, query: params, headers: req.headers, body: null });
    return refused ? refuse(refused, identity) : { ok: true, identity, match: route.match, body: null };
  }

  /** Runs the checks for a request or an upgrade; throws only when the store is unavailable. */
  function run(req: IncomingMessage, upgrade: boolean): Outcome | Promise<Outcome> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? null : url.slice(q + 1);
    const result = authenticate(credentialOf(req.headers, url, upgrade));
    if (result instanceof Promise) return result.then((r) => (r.ok ? afterIdentity(req, r, path, query, upgrade) : r));
    return result.ok ? afterIdentity(req, result, path, query, upgrade) : result;
  }

  /**
   * The checks after the key's status (mTLS, origin, route policy, assistant), re-run for a live WebSocket
   * session's upgrade request against a fresh key record: a key changed so that it may no longer open the
   * session is refused (SPEC §5). Synchronous: an upgrade has no body to read (a body rule refuses it).
   */
  function recheck(req: IncomingMessage, identity: Identity): Denial | null {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const outcome = afterIdentity(req, identity, q < 0 ? url : url.slice(0, q), q < 0 ? null : url.slice(q + 1), true);
    if (outcome instanceof Promise) return noUpgradeBody;
    return outcome.ok ? null : outcome;
  }

  return Object.assign(run, { recheck });
}

export type Pipeline = ReturnType<typeof createPipeline>;
