// Baseline: the same Express 5 + http-proxy-middleware 4 stack keygate uses, with authentication switched off.
import { Agent } from 'node:http';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';

const app = express();
app.use(createProxyMiddleware({ target: process.env.UPSTREAM_URL, agent: new Agent({ keepAlive: true, maxSockets: 256 }) }));
app.listen(Number(process.env.PORT), '127.0.0.1', () => process.send?.('ready'));
