import { Router, type Request, type Response } from 'express';
import { KEY_ID } from '../keys/ids.ts';
import { ApiError } from '../http/errors.ts';
import { validate } from './http.ts';
import type { Actor } from './key-rules.ts';
import type { KeyService } from './key-service.ts';
import { createKeyBody, pageQuery, rotateKeyBody, updateKeyBody } from './schemas.ts';

/** How a router says whose keys a request addresses, who asks, and what the asker must hold. */
export interface KeyRouteContext {
  tenantOf(req: Request, res: Response): string;
  actorOf(res: Response): Actor;
  /** Throws `insufficient_permissions` unless the caller holds `permission`; the admin holds everything. */
  require(res: Response, permission: string): void;
}

export const pageOf = (req: Request) => {
  const q = validate(pageQuery, req.query, 'query');
  return { limit: q.limit, cursor: q.cursor ?? null };
};

/** `current` is the calling key (self-service rotation); anything else must look like a key id. */
function keyIdOf(req: Request, res: Response, ctx: KeyRouteContext, allowCurrent: boolean): string {
  const id = req.params.id as string;
  if (allowCurrent && id === 'current') {
    const actor = ctx.actorOf(res);
    if (actor.kind === 'key') return actor.key.id;
  }
  if (!KEY_ID.test(id)) throw new ApiError('not_found', `No API key ${id}.`);
  return id;
}

/** The API-key operations (described in src/api/openapi/), identical for self-service and admin. */
export function keyRoutes(service: KeyService, ctx: KeyRouteContext): Router {
  const r = Router({ mergeParams: true });

  r.post('/', async (req, res) => {
    ctx.require(res, 'api-keys:write');
    const body = validate(createKeyBody, req.body);
    res.status(201).json(await service.createKey(ctx.tenantOf(req, res), body, ctx.actorOf(res)));
  });

  r.get('/', async (req, res) => {
    ctx.require(res, 'api-keys:read');
    res.json(await service.listKeys(ctx.tenantOf(req, res), pageOf(req), ctx.actorOf(res)));
  });

  r.get('/:id', async (req, res) => {
    ctx.require(res, 'api-keys:read');
    res.json(await service.getKey(ctx.tenantOf(req, res), keyIdOf(req, res, ctx, true), ctx.actorOf(res)));
  });

  r.patch('/:id', async (req, res) => {
    ctx.require(res, 'api-keys:write');
    const body = validate(updateKeyBody, req.body);
    res.json(await service.updateKey(ctx.tenantOf(req, res), keyIdOf(req, res, ctx, true), body, ctx.actorOf(res)));
  });

  r.delete('/:id', async (req, res) => {
    ctx.require(res, 'api-keys:delete');
    await service.revokeKey(ctx.tenantOf(req, res), keyIdOf(req, res, ctx, true), ctx.actorOf(res));
    res.status(204).end();
  });

  r.post('/:id/rotate', async (req, res) => {
    ctx.require(res, 'api-keys:write');
    const { gracePeriodSeconds } = validate(rotateKeyBody, req.body);
    res.status(201).json(await service.rotateKey(ctx.tenantOf(req, res), keyIdOf(req, res, ctx, true), gracePeriodSeconds, ctx.actorOf(res)));
  });

  return r;
}
