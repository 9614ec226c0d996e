import express, { type ErrorRequestHandler, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import { InvalidCursorError, StoreContentionError, StoreError, StoreUnavailableError } from '../store/errors.ts';
import { issuePath } from '../config/load.ts';
import { ApiError, sendError } from '../http/errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import type { Logger } from '../ops/logger.ts';

// Plumbing shared by the self-service and admin routers: request ids, strict JSON bodies, validation with
// field paths, and the one error envelope.

/**
 * A store call as the API answers it: a store failure is 503 `store_unavailable`, never a 500; a cursor the store
 * cannot read is the caller's 400.
 */
export async function guarded<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof InvalidCursorError) {
      throw new ApiError('validation_error', `query.cursor: ${err.message}`, { details: [{ path: 'query.cursor', message: err.message }] });
    }
    throw err instanceof ApiError ? err : new StoreUnavailableError(err);
  }
}

export const requestIdOfRes = (res: Response): string => res.locals.requestId as string;

/** The request id: the gate's (public listener), or one of its own (internal listener). */
export const assignRequestId: RequestHandler = (req, res, next) => {
  const id = (res.locals.requestId as string | undefined) ?? requestIdOf(req);
  res.locals.requestId = id;
  res.setHeader('X-Request-Id', id);
  next();
};

/**
 * The path of the first key named `__proto__` in a parsed JSON value, or null. zod leaves such a key out of what
 * it parses (an object or record is rebuilt key by key, and that assignment would set a prototype), so a request
 * naming one would succeed with the entry silently dropped; it is refused instead. Walked without recursion: a
 * body may nest deeper than the stack.
 */
function protoKeyPath(value: unknown): PropertyKey[] | null {
  interface Node { v: unknown; key: PropertyKey; up: Node | null }
  const stack: Node[] = [{ v: value, key: '', up: null }];
  while (stack.length) {
    const node = stack.pop()!;
    const { v } = node;
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v) && Object.hasOwn(v, '__proto__')) {
      const path: PropertyKey[] = ['__proto__'];
      for (let n: Node | null = node; n?.up; n = n.up) path.unshift(n.key);
      return path;
    }
    for (const [k, child] of Object.entries(v)) stack.push({ v: child, key: Array.isArray(v) ? Number(k) : k, up: node });
  }
  return null;
}

/** Parses `value` with `schema`, or answers 400 `validation_error` listing every bad field path. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where = ''): z.infer<S> {
  const proto = protoKeyPath(value);
  if (proto) {
    const path = [where, issuePath(proto)].filter((s) => s && s !== '(root)').join('.');
    throw new ApiError('validation_error', `Invalid request: ${path}: the key __proto__ is not allowed`, { details: [{ path, message: 'the key __proto__ is not allowed' }] });
  }
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? i.keys : [null];
    return keys.map((k) => ({
      path: [where, issuePath(k === null ? i.path : [...i.path, k])].filter((s) => s && s !== '(root)').join('.') || '(body)',
      message: k === null ? i.message : 'unknown field',
    }));
  }).flat();
  throw new ApiError('validation_error', `Invalid request: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details });
}

const hasBody = (req: Request): boolean =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/** JSON bodies only, at most `limit` bytes; anything else is refused before a handler runs. */
export function jsonBody(limit: number): RequestHandler[] {
  const parse = express.json({ limit, strict: true, type: () => true });
  return [
    (req, _res, next) => {
      if (!hasBody(req)) return next();
      if (!req.is('application/json')) {
        return next(new ApiError('malformed_request', 'The request body must be JSON (Content-Type: application/json).'));
      }
      next();
    },
    (req, res, next) => (hasBody(req) ? parse(req, res, next) : next()),
  ];
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new ApiError('not_found', `No route for ${req.method} ${req.path}.`));
};

interface BodyParserError {
  type?: string;
  status?: number;
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const requestId = requestIdOfRes(res);
    if (err instanceof ApiError) return sendError(res, requestId, err.code, err.message, err.options);
    if (err instanceof StoreUnavailableError || err instanceof StoreContentionError) {
      // Every store failure answered 503 is logged with its cause and operation (a CROSSSLOT
      // behind a 503 left no trace).
      const cause = err instanceof StoreUnavailableError ? err.cause : err;
      const store = cause instanceof StoreError ? { op: cause.op, command: cause.command } : {};
      logger.warn({ err, requestId, ...store }, 'key store unavailable; answered 503');
      return sendError(res, requestId, 'store_unavailable', 'The key store is unavailable; try again shortly.');
    }
    const type = (err as BodyParserError)?.type;
    if (type === 'entity.too.large') return sendError(res, requestId, 'payload_too_large', 'The request body is too large.');
    if (type === 'entity.parse.failed') return sendError(res, requestId, 'malformed_request', 'The request body is not valid JSON.');
    if (type === 'request.aborted') return;
    const status = (err as BodyParserError)?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return sendError(res, requestId, 'malformed_request', 'The request could not be read.');
    }
    logger.error({ err, requestId }, 'unhandled error in management API');
    sendError(res, requestId, 'internal_error', 'Internal error.');
  };
}

/** Express 5 forwards rejected promises to the error handler; this only narrows the handler type. */
export type Handler = (req: Request, res: Response) => Promise<void> | void;
