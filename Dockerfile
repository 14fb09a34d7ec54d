# syntax=docker/dockerfile:1
# The Santokit image: one image, two entry points.
#   santokit-operator           the controller manager (the ENTRYPOINT)
#   santokit-operator bridge    the data plane (pass `bridge` as the first argument)
# charts/santokit runs both from it. Node comes from the node:24 base images; the `node`
# devDependency that pins Node for development is not installed in any stage.
#
# The runtime stage runs nothing at build time (no RUN): it only copies the production
# dependencies and the compiled code onto the runtime base, so that base needs no shell and no
# npm (hack/build-image.sh builds it with `node` and the C libraries only). It runs as
# 1000:1000 with a read-only root file system.

ARG NODE_IMAGE=node:24-bookworm
ARG NODE_RUNTIME_IMAGE=node:24-bookworm-slim

# --- build: compile TypeScript (core/, operator/, cli/) into dist/ -----------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY core ./core
COPY operator ./operator
COPY cli ./cli
# JSON Schemas are imported by the code (and emitted into dist/schema).
COPY schema ./schema
# stk is bundled by esbuild after tsc (npm run build).
COPY hack/build-cli.mjs ./hack/build-cli.mjs
# Declarations and source maps are for development only.
RUN npm run build \
 && find dist \( -name '*.d.ts' -o -name '*.d.ts.map' -o -name '*.js.map' \) -delete

# --- deps: production dependencies only ---------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install scripts among production dependencies build optional native
# speed-ups for ssh2 (it falls back to pure JavaScript); the runtime image has no compiler.
# Then drop what only development reads: TypeScript sources and declarations (Node never loads
# .ts files from node_modules), source maps, Markdown docs and changelogs.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.tsx' \
      -o -name '*.map' -o -iname '*.md' -o -iname '*.markdown' \) -delete \
 && npm cache clean --force

# --- runtime: production dependencies, the compiled code, CRDs and schemas ---------------------
FROM ${NODE_RUNTIME_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY crds ./crds
COPY schema ./schema
# The node image's `node` user, numerically, so Kubernetes can verify runAsNonRoot.
USER 1000:1000
# Probes and metrics (operator), data plane (bridge).
EXPOSE 8081 8080
ENTRYPOINT ["node", "/app/dist/operator/main.js"]
