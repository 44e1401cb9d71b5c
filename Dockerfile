# syntax=docker/dockerfile:1
# Multi-stage build: compile with dev dependencies, ship production dependencies only.

FROM node:20-slim AS build
WORKDIR /app
# better-sqlite3 compiles its native addon from source.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ormconfig.ts ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
COPY --chown=node:node public ./public
RUN mkdir -p /app/data && chown node:node /app/data
# DATA_DIR: the SQLite database when DATABASE_URL is unset (and the generated session secret outside live mode).
# Declared a volume so that it outlives the container; mount one: -v whp-data:/app/data
VOLUME ["/app/data"]
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Migrations first (a failed migration stops the container), then the app. dist/src/migrate.js prints
# configuration errors first and alone (every bad variable named, no stack trace).
CMD ["sh", "-c", "node dist/src/migrate.js && exec node dist/src/main.js"]
