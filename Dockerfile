# a2a-mesh node image. No build step: tsx runs the TypeScript sources.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY packages/protocol/package.json packages/protocol/package.json
COPY packages/client/package.json packages/client/package.json
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin bin
COPY src src
COPY packages packages
EXPOSE 7420
USER node
ENTRYPOINT ["node", "bin/a2a-mesh.js"]
CMD ["node", "--host", "0.0.0.0", "--port", "7420"]
