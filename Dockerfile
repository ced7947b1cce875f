# Decision Gate — container image serving the container-prod preset behind a TLS-terminating proxy.
# Build: docker build -t decision-gate .   Run: see docs/DEPLOYMENT.md.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 is compiled from source when no prebuilt binary can be fetched.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
RUN groupadd --gid 10001 decision-gate \
  && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin decision-gate \
  && mkdir -p /var/lib/decision-gate /etc/decision-gate/evidence \
  && chown -R decision-gate:decision-gate /var/lib/decision-gate
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY presets ./presets
COPY docs ./docs
COPY presets/container-prod.toml /etc/decision-gate/decision-gate.toml
USER decision-gate
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/bin/decision-gate.js"]
CMD ["serve", "--config", "/etc/decision-gate/decision-gate.toml", "--allow-non-loopback"]
