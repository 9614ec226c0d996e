// Baseline: the stack people write first — http-proxy-middleware with its defaults, one Redis read of the
// key and one Redis rate-limit call per request.
import { createHash } from 'node:crypto';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';

const redis = new Redis(process.env.REDIS_URL!);
const limiter = new RateLimiterRedis({ storeClient: redis, points: 1_000_000_000, duration: 60, keyPrefix: 'naive' });
const app = express();
app.use(async (req, res, next) => {
  const key = req.get('x-api-key');
  if (!key) return void res.status(401).json({ error: 'missing' });
  const record = await redis.get(`naive:key:${createHash('sha256').update(key).digest('hex')}`);
  if (!record) return void res.status(401).json({ error: 'invalid' });
  try {
    await limiter.consume(key);
  } catch {
    return void res.status(429).json({ error: 'rate_limited' });
  }
  req.headers['x-tenant-id'] = (JSON.parse(record) as { tenantId: string }).tenantId;
  next();
});
app.use(createProxyMiddleware({ target: process.env.UPSTREAM_URL }));
app.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
