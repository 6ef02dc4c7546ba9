# a2a-mesh node image. Stage 1 compiles the node to plain JavaScript (dist/, esbuild);
# stage 2 holds that build and the production dependencies only, and runs it on plain Node.js.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/package.json
COPY packages/client/package.json packages/client/package.json
RUN npm ci --no-audit --no-fund
COPY scripts scripts
COPY src src
COPY packages packages
RUN node scripts/build.mjs

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/package.json
COPY packages/client/package.json packages/client/package.json
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist dist
COPY bin bin
COPY scripts/build.mjs scripts/build.mjs
EXPOSE 7420
USER node
ENTRYPOINT ["node", "bin/a2a-mesh.js"]
CMD ["node", "--host", "0.0.0.0", "--port", "7420"]
