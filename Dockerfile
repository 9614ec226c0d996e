# syntax=docker/dockerfile:1
# keygate: build the TypeScript in one stage, ship only production dependencies and the build in the next.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY console ./console
RUN npm run build

FROM node:24-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
# The image's unprivileged user (uid 1000); nothing in /app needs to be writable.
USER node
# 8080: public listener (proxy + self-service API). 9090: internal listener (health, metrics, admin API).
# keygate binds the internal listener to loopback unless told otherwise; in a container, loopback is the
# container's own and a published port (-p 9090:9090) arrives on its network interface, so the image opens it
# there. Publish 9090 only to a private network: it carries the admin API.
ENV OPS_HOST=0.0.0.0
EXPOSE 8080 9090
# `keygate healthcheck` reads the effective configuration (KEYGATE_CONFIG, OPS_PORT, ...), so the internal
# listener is probed wherever it was configured to listen.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "dist/server/cli.js", "healthcheck"]
# --max-semi-space-size=8: V8's young generation stops at 8 MiB semi-spaces instead of growing to 64+ MiB under
# load. --heap-growing-percent=50: the old generation is collected once it grows by half, not by up to 4x, which
# roughly halves peak RSS with a full key cache. Both measured free of throughput and p99 cost (bench/README.md,
# "What the numbers decided"). Semi-spaces of 2 or 4 MiB would save 5-12 MB of RSS in the first seconds and at
# peak (none once idle) at a cost in throughput; no --max-old-space-size: Node sizes the heap from the
# container's memory limit (bench/README.md, "Memory").
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=50", "dist/server/cli.js", "serve"]
