import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseCookie } from 'cookie';
import express, { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { jsonBody, validate } from '../api/http.ts';
import type { Operator } from '../api/operators.ts';
import { packageRoot } from '../config/load.ts';
import { ApiError } from '../http/errors.ts';
import { StoreUnavailableError } from '../store/errors.ts';
import { calledOverTls, createOriginCheck } from './origin.ts';
import type { ConsoleSessions } from './sessions.ts';

/** The browser app, built by `npm run build` (console/build.ts) beside the server's JavaScript. */
export const CONSOLE_ASSETS = resolve(packageRoot, 'dist/console-ui');
export const SESSION_COOKIE = 'kg_console';

/**
 * Scripts, styles and API calls from this origin only; no inline script or style element, no frames, no plugins,
 * nothing sent elsewhere. The app sets element styles through the DOM (uPlot, Preact), which CSP allows.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const loginBody = z.strictObject({ token: z.string().min(1).max(512) });

export interface ConsoleDeps {
  /** Null until the store is open (sessions live beside it on Redis): a console call then answers 503. */
  sessions: () => ConsoleSessions | null;
  origins: readonly string[];
  /** The admin token or a named operator's, resolved (api/operators.ts). */
  operatorOf: (token: string, req: Request) => Promise<Operator | null>;
  /** The operator configured now for a session's credential (`Operator.credential`): null once removed or re-tokened. */
  currentOperator: (credential: string | undefined) => Operator | null;
  /** The admin API's router for the console's door, given how it authenticates (built when the store is ready). */
  adminApi: (authenticate: (req: Request) => Promise<Operator>) => RequestHandler | null;
  count: (decision: string) => void;
}

const sessionIdOf = (req: Request): string | undefined => (req.headers.cookie ? parseCookie(req.headers.cookie)[SESSION_COOKIE] : undefined);

/**
 * `/console` on the internal listener: the browser app, sign-in and sign-out, and the admin API under
 * `/console/api/admin/v1` authenticated by the session cookie instead of a bearer token — the same router, so
 * roles, validation and audit are the admin API's own.
 */
export function consoleRouter(deps: ConsoleDeps): Router {
  const r = Router();
  const sessions = (): ConsoleSessions => {
    const s = deps.sessions();
    if (!s) throw new StoreUnavailableError(new Error('the store is not open yet'));
    return s;
  };
  const checkOrigin = createOriginCheck(deps.origins);
  let indexHtml: Buffer | null = null;
  const page: RequestHandler = (_req, res) => {
    try {
      indexHtml ??= readFileSync(resolve(CONSOLE_ASSETS, 'index.html'));
    } catch {
      throw new ApiError('not_found', 'The console is not built (npm run build).');
    }
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(indexHtml);
  };

  r.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    next();
  });
  r.get(['/', '/login'], page);
  r.use('/assets', express.static(resolve(CONSOLE_ASSETS, 'assets'), { index: false, fallthrough: true, maxAge: '1h', immutable: false }));

  r.post('/login', (req, _res, next) => {
    checkOrigin(req);
    next();
  }, ...jsonBody(1024), async (req, res) => {
    const { token } = validate(loginBody, req.body);
    const operator = await deps.operatorOf(token, req);
    if (!operator) {
      deps.count('invalid_api_key');
      throw new ApiError('invalid_api_key', 'That token is not the admin token or an operator token.');
    }
    deps.count('allowed');
    await sessions().end(sessionIdOf(req));
    const { id, maxAgeSeconds } = await sessions().create(operator);
    res.cookie(SESSION_COOKIE, id, { httpOnly: true, sameSite: 'strict', secure: calledOverTls(req), path: '/console', maxAge: maxAgeSeconds * 1000 });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ name: operator.name, role: operator.role, expiresInSeconds: maxAgeSeconds });
  });

  r.post('/logout', async (req, res) => {
    checkOrigin(req);
    await sessions().end(sessionIdOf(req));
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', secure: calledOverTls(req), path: '/console' });
    res.status(204).end();
  });

  const authenticate = async (req: Request): Promise<Operator> => {
    checkOrigin(req);
    // The session's operator as configured now: its role may have changed, or its token been replaced or removed,
    // since it signed in (sessions on Redis outlive a restart, and a restart is how that is done).
    const signedIn = await sessions().get(sessionIdOf(req));
    const operator = signedIn ? deps.currentOperator(signedIn.credential) : null;
    if (!operator) throw new ApiError('missing_api_key', 'Sign in at /console/login.');
    return operator;
  };
  let api: RequestHandler | null = null;
  r.use('/api/admin/v1', (req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    api ??= deps.adminApi(authenticate);
    if (api) api(req, res, next);
    else next();
  });
  return r;
}
