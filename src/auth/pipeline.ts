import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { Target } from '../http/target.ts';
import { readBody } from '../http/body.ts';
import { checkAssistant, queryViews, type QueryViews } from './assistant.ts';
import type { Authorizer } from './authorize.ts';
import { credentialOf } from './credential.ts';
import { readJsonBody } from './json-body.ts';
import { checkOrigin } from './origin.ts';
import type { AssistantRule, RouteMatch } from './policy.ts';
import { checkTransport } from './transport.ts';
import type { TokenUses } from '../limits/token-uses.ts';
import { refuse, type Authenticator, type StageRefusal, type Identity } from './verify.ts';

// The request checks as one straight line: credential → verify → mTLS → origin → route policy → assistant.
// Each stage returns a StageRefusal or passes; the line stays synchronous unless the store or a body must be read.
// Both doors of the public listener run it (the rule "One gate for every door"): the proxy, its WebSocket
// upgrades and the management API differ only in the last stage — route policy and assistant rules for what
// is forwarded, a refusal of public keys for `/keygate/v1`.

/**
 * Which door a request came through. `check`: a gateway's authorization check (src/authz/) that does not carry
 * the request body, so a route whose assistant rule reads the body cannot be decided on it.
 */
export type Door = 'proxy' | 'upgrade' | 'management' | 'check';

export interface Grant {
  ok: true;
  identity: Identity;
  match: RouteMatch | null;
  /** The exact body bytes, when an assistant rule had to read them (forwarded as they came). */
  body: Buffer | null;
}

/** A refusal, with the identity when the key itself was valid (for usage and access logs). */
export type Refusal = StageRefusal & { identity?: Identity };

export type Outcome = Grant | Refusal;

export interface PipelineDeps {
  authenticate: Authenticator;
  authorize: Authorizer;
  xfccFrom: BlockList | null;
  maxAssistantBodyBytes: number;
  /** Uses of session tokens that limit them; null when session tokens are off. */
  tokenUses?: TokenUses | null;
}

const tooLarge = refuse('payload_too_large', 'The request body is too large for this route.');
const noManagement = refuse('public_key_not_allowed', 'Public keys cannot use the management API; use a private key from a server.');
const noUpgradeBody = refuse('assistant_not_allowed', 'This route reads the assistant from a body, which an upgrade does not have.');
const noTokenManagement = refuse('insufficient_permissions', 'Session tokens cannot use the management API (but GET /keygate/v1/session-tokens/current); use a key from a server.');
const usedUp = refuse('invalid_api_key', 'The session token has been used as often as it may.');
/** The one management route a session token may call: its own status. */
const TOKEN_STATUS_PATH = '/keygate/v1/session-tokens/current';
/**
 * What the checks after the key's status read of a request: its method, headers and socket (mTLS). A live
 * WebSocket session keeps only this of its upgrade request, for the re-checks.
 */
export type RequestHead = Pick<IncomingMessage, 'method' | 'headers' | 'socket'>;

const noCheckBody = refuse('assistant_not_allowed', 'This route reads the assistant from the body, which the gateway did not send to keygate whole.');

/** The body members an assistant rule reads: none of them may appear twice (auth/json-body.ts). */
const namesOf = (rule: AssistantRule): ReadonlySet<string> => new Set(rule.transientField ? [rule.field, rule.transientField] : [rule.field]);

export function createPipeline(deps: PipelineDeps) {
  const { authenticate, authorize } = deps;

  function withIdentity(refusal: StageRefusal, identity: Identity): Refusal {
    return { ...refusal, identity };
  }

  async function withBody(req: IncomingMessage, identity: Identity, match: RouteMatch, query: QueryViews): Promise<Outcome> {
    const body = await readBody(req, deps.maxAssistantBodyBytes);
    if (body === 'too_large') return withIdentity(tooLarge, identity);
    const rule = match.route.assistant!;
    const json = readJsonBody(req.headers, body, namesOf(rule));
    if (!json.ok) return withIdentity(refuse('malformed_request', json.message), identity);
    const refusal = checkAssistant(identity.policy, rule, { params: match.params, ...query, headers: req.headers, body: json.value });
    return refusal ? withIdentity(refusal, identity) : { ok: true, identity, match, body };
  }

  /**
   * What the key may do with this request once it is known to be valid (steps 8–11). Without a body to read
   * it is synchronous: WebSocket sessions are checked again with it whenever their key changes.
   */
  function authorizeRequest(req: RequestHead, identity: Identity, target: Target, door: Door): Outcome | Promise<Outcome> {
    const key = identity.policy;
    const refusal = checkTransport(key, req, deps.xfccFrom) ?? checkOrigin(key, req.headers.origin);
    if (refusal) return withIdentity(refusal, identity);
    if (door === 'management') {
      if (identity.token) return req.method === 'GET' && target.path === TOKEN_STATUS_PATH ? { ok: true, identity, match: null, body: null } : withIdentity(noTokenManagement, identity);
      return key.keyType === 'public' ? withIdentity(noManagement, identity) : { ok: true, identity, match: null, body: null };
    }
    const route = authorize(key, req.method ?? 'GET', target.path);
    if (!route.ok) return withIdentity(route, identity);
    const rule = route.match?.route.assistant;
    if (!rule) return { ok: true, identity, match: route.match, body: null };
    const q = target.url.indexOf('?');
    const query = queryViews(q < 0 ? null : target.url.slice(q + 1));
    if (rule.from === 'body') {
      if (door === 'upgrade') return withIdentity(noUpgradeBody, identity);
      // Only run() reaches this with the other doors, and it passes the whole request.
      return door === 'check' ? withIdentity(noCheckBody, identity) : withBody(req as IncomingMessage, identity, route.match!, query);
    }
    const refused = checkAssistant(key, rule, { params: route.match!.params, ...query, headers: req.headers, body: null });
    return refused ? withIdentity(refused, identity) : { ok: true, identity, match: route.match, body: null };
  }

  /**
   * A session token that limits its uses is counted once its request is allowed (one atomic increment across
   * replicas): a WebSocket upgrade against `maxSessions`, any other request against `maxUses`.
   */
  function counted(outcome: Outcome, door: Door): Outcome | Promise<Outcome> {
    const token = outcome.ok ? outcome.identity.token : null;
    if (token === null || door === 'management' || !deps.tokenUses) return outcome;
    const session = door === 'upgrade';
    const limit = session ? token.maxSessions : token.maxUses;
    if (limit === null) return outcome;
    const identity = (outcome as Grant).identity;
    return deps.tokenUses.use(identity.tenant.id, token.id, session ? 'session' : 'request', token.expiresAt).then((n) => (n <= limit ? outcome : withIdentity(usedUp, identity)));
  }

  function authorizeCounted(req: IncomingMessage, identity: Identity, target: Target, door: Door): Outcome | Promise<Outcome> {
    const outcome = authorizeRequest(req, identity, target, door);
    if (identity.token === null) return outcome;
    return outcome instanceof Promise ? outcome.then((o) => counted(o, door)) : counted(outcome, door);
  }

  /** Runs the checks for a request on one door; throws only when the store is unavailable. */
  function run(req: IncomingMessage, target: Target, door: Door): Outcome | Promise<Outcome> {
    // The credential is read from the target as sent: the canonical one has no `api_key` left in it.
    const result = authenticate(credentialOf(req.headers, req.url ?? '/', door === 'upgrade'));
    if (result instanceof Promise) return result.then((r) => (r.ok ? authorizeCounted(req, r, target, door) : r));
    return result.ok ? authorizeCounted(req, result, target, door) : result;
  }

  /**
   * The checks after the key's status (mTLS, origin, route policy, assistant), re-run for a live WebSocket
   * session's upgrade request and canonical target against a fresh key record: a key changed so that it may no
   * longer open the session is refused. Synchronous: an upgrade has no body to read.
   */
  function recheck(req: RequestHead, identity: Identity, target: Target): StageRefusal | null {
    const outcome = authorizeRequest(req, identity, target, 'upgrade');
    if (outcome instanceof Promise) return noUpgradeBody;
    return outcome.ok ? null : outcome;
  }

  return Object.assign(run, { recheck });
}

export type Pipeline = ReturnType<typeof createPipeline>;
