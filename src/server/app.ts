import { readFile, stat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { Readable, Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { receiptLog } from "../actions/receipt-log.js";
import { receiptIssuer } from "../actions/receipts.js";
import type { LoadedConfig } from "../config/load.js";
import type { DecisionGateConfig } from "../config/schema.js";
import { createDispatchPolicy } from "../core/dispatch/policy.js";
import type { ManifestSigner } from "../core/runpack/signature.js";
import { buildEvidenceRuntime, type EvidenceRuntime } from "../evidence/registry.js";
import { loadKeyring } from "../evidence/trust/keys.js";
import { isLoopbackBind, parseBind } from "../net/address.js";
import { loadManifestSigner } from "../runpack/signing-key.js";
import { openStores } from "../store/factory.js";
import { createAuditLog } from "./audit.js";
import { authSettings } from "./auth.js";
import { ServerCorrelationIds } from "./correlation.js";
import { DocsCatalog } from "./docs/catalog.js";
import { createHttpApp, type HttpHooks } from "./http.js";
import type { ListenerSettings } from "./listener.js";
import { createServerLogger, effectiveLogLevel } from "./log.js";
import { ServerMetrics } from "./metrics.js";
import { createMetricsApp } from "./metrics-endpoint.js";
import type { Observers } from "./observe.js";
import { assetcoreAuthority } from "./policy/assetcore.js";
import { PrincipalDirectory } from "./policy/principals.js";
import { RegistryAcl } from "./policy/registry-acl.js";
import { ScopeGuard } from "./policy/scope.js";
import { RateLimiter } from "./rate-limit.js";
import { ToolRouter } from "./router.js";
import { checkBindPolicy, ServePolicyError } from "./serve-policy.js";
import type { ServerServices } from "./services.js";
import { NOTICE_PREFIX, startupNotices } from "./startup-notices.js";
import { serveStdio } from "./stdio.js";
import { loadTracing } from "./telemetry/load.js";
import type { Tracing } from "./telemetry/tracing.js";
import { toolNames } from "./tools/catalog.js";

export interface ServeOptions {
  /** `--allow-non-loopback` (or the environment variable, already read by the caller). */
  allowNonLoopback: boolean;
  /** For stdio: where requests come from and responses go (process stdin/stdout by default). */
  stdin?: Readable;
  stdout?: Writable;
  /** Startup notices; stderr by default. */
  notice?: (line: string) => void;
  /** Where the operational log goes (stderr by default) and the environment its level may come from. */
  logStream?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
}

export interface RunningServer {
  /** `http://host:port` for HTTP/SSE; null for stdio. */
  url: string | null;
  /** Resolves when the server stopped (stdio: end of input). */
  done: Promise<void>;
  /** Stops accepting work, lets in-flight requests finish, then closes providers and stores. */
  close(): Promise<void>;
}

/** Builds everything from configuration and starts serving on the configured transport. */
export async function startServer(loaded: LoadedConfig, options: ServeOptions): Promise<RunningServer> {
  const { config } = loaded;
  const notice = options.notice ?? ((line: string) => process.stderr.write(`${line}\n`));
  checkBindPolicy(config, options.allowNonLoopback);
  const log = createServerLogger(
    { ...config.server.log, level: effectiveLogLevel(config.server.log.level, options.env ?? process.env) },
    options.logStream,
  );
  const audit = createAuditLog({
    enabled: config.server.audit.enabled,
    path: config.server.audit.path,
    logPrecheckPayloads: config.server.audit.log_precheck_payloads,
  });
  const stores = await openStores({ run_state_store: config.run_state_store, schema_registry: config.schema_registry });
  let evidence: EvidenceRuntime | undefined;
  let tracing: Tracing | null = null;
  try {
    tracing = await loadTracing(config.telemetry);
    evidence = await buildEvidenceRuntime(config, { cwd: loaded.baseDir });
    const signingKeys = await loadKeyring(config.schema_registry.acl.signing_keys, loaded.baseDir);
    const runpackSigner = await runpackSignerOf(config);
    const metrics = new ServerMetrics(toolNames());
    const auth = authSettings({ ...config.server, tlsInProcess: config.server.tls !== undefined });
    const observers = { audit, metrics, log, auth };
    const keys = { registry: signingKeys, runpackSigner };
    const services = buildServices(config, stores, evidence, keys, observers, tracing);
    for (const warning of services.docs?.catalog.warnings ?? []) notice(`${NOTICE_PREFIX}: WARNING: ${warning}`);
    const configModifiedMs = loaded.path === null ? null : (await stat(loaded.path)).mtimeMs;
    for (const line of startupNotices(config, { configModifiedMs, nowMs: Date.now() })) notice(line);
    if (config.dev.permissive) {
      audit.security({
        unsafe_client_correlation_id: null,
        server_correlation_id: null,
        kind: "dev_permissive_enabled",
        message: "dev-permissive mode enabled",
        dev_permissive: true,
        namespace_authority: services.runpacks.security.namespace_authority,
      });
    }
    const rateLimit = config.server.limits.rate_limit;
    const router = new ToolRouter(
      services,
      auth,
      config.server.tools,
      {
        rateLimiter: rateLimit === undefined ? null : new RateLimiter(rateLimit),
        maxBodyBytes: Number(config.server.max_body_bytes),
      },
      tracing,
    );
    const ids = new ServerCorrelationIds();
    const shutdown = async () => {
      await evidence?.close();
      await stores.close();
      await audit.close();
      await tracing?.shutdown();
    };
    if (config.server.transport === "stdio") {
      const done = serveStdio(
        router,
        options.stdin ?? process.stdin,
        options.stdout ?? process.stdout,
        ids,
        Number(config.server.max_body_bytes),
      ).finally(shutdown);
      return { url: null, done, close: async () => done };
    }
    const ready = async () =>
      (await Promise.all([stores.runs.ready(), stores.scenarios.ready(), stores.schemas.ready()])).every(Boolean);
    return await serveHttp(config, router, ids, { ready, ...observers }, shutdown, notice);
  } catch (error) {
    await evidence?.close();
    await stores.close();
    await audit.close();
    await tracing?.shutdown();
    throw error;
  }
}

async function serveHttp(
  config: DecisionGateConfig,
  router: ToolRouter,
  ids: ServerCorrelationIds,
  hooks: HttpHooks & Pick<Observers, "auth">,
  shutdown: () => Promise<void>,
  notice: (line: string) => void,
): Promise<RunningServer> {
  const { server } = config;
  const { limits } = server;
  const listener: ListenerSettings = {
    maxBodyBytes: Number(server.max_body_bytes),
    connections: {
      headerTimeoutMs: limits.header_timeout_ms,
      requestTimeoutMs: limits.request_timeout_ms,
      idleTimeoutMs: limits.idle_timeout_ms,
      maxUnauthenticatedPerPeer: limits.max_unauthenticated_connections_per_peer,
    },
    guard: {
      loopbackBind: isLoopbackBind(server.bind ?? ""),
      allowedHosts: server.allowed_hosts,
      allowedOrigins: server.allowed_origins,
    },
  };
  const metrics = { bearerToken: server.metrics.bearer_token };
  const app = createHttpApp(
    router,
    {
      ...listener,
      transport: server.transport === "sse" ? "sse" : "http",
      maxInflight: Number(limits.max_inflight),
      bearerChallenge: server.auth.mode === "bearer_token",
      oauth: hooks.auth.oauth,
      https: server.tls === undefined ? undefined : await tlsMaterial(server.tls),
      metrics: server.metrics.bind === undefined ? metrics : null,
    },
    ids,
    hooks,
  );
  const url = await listen(app, server.bind, server.tls === undefined ? "http" : "https");
  const metricsBind = server.metrics.bind;
  const metricsApp =
    metricsBind === undefined
      ? null
      : createMetricsApp(
          { ...listener, guard: { ...listener.guard, loopbackBind: isLoopbackBind(metricsBind) }, metrics },
          hooks,
        );
  if (metricsApp !== null) {
    try {
      notice(`${NOTICE_PREFIX}: metrics on ${await listen(metricsApp, metricsBind, "http")}/metrics`);
    } catch (error) {
      await app.close();
      throw error;
    }
  }
  let resolveDone = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  return {
    url,
    done,
    close: async () => {
      await Promise.all([app.close(), metricsApp?.close()]);
      await shutdown();
      resolveDone();
    },
  };
}

/** Listens on an IP-literal bind and returns the URL it serves. */
async function listen(app: FastifyInstance, bind: string | undefined, scheme: "http" | "https"): Promise<string> {
  const { host, port } = parseBind(bind ?? "") ?? { host: "127.0.0.1", port: 4000 };
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  return `${scheme}://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
}

async function tlsMaterial(tls: NonNullable<DecisionGateConfig["server"]["tls"]>) {
  const ca = tls.client_ca_path === undefined ? undefined : await readFile(tls.client_ca_path);
  return {
    key: await readFile(tls.key_path),
    cert: await readFile(tls.cert_path),
    ca,
    requestCert: ca !== undefined,
    rejectUnauthorized: ca !== undefined && tls.require_client_cert,
  };
}

function buildServices(
  config: DecisionGateConfig,
  stores: Awaited<ReturnType<typeof openStores>>,
  evidence: EvidenceRuntime,
  keys: { registry: ReadonlyMap<string, Uint8Array>; runpackSigner: ManifestSigner | undefined },
  { audit, metrics, log }: Observers,
  tracing: Tracing | null,
): ServerServices {
  const principals = new PrincipalDirectory(config.server.auth.principals);
  const docs = config.docs;
  const actions = config.runtime_actions;
  const countedEvidence = metrics.countingEvidence(evidence.pipeline);
  const countedRuns = metrics.countingStore(stores.runs);
  return {
    audit,
    metrics,
    log,
    decisionEvidence: tracing === null ? countedEvidence : tracing.evidence(countedEvidence),
    actions: {
      issuer: actions.enabled
        ? receiptIssuer({
            mapping: actions.mapping,
            capabilities: { allowed: actions.allowed_capabilities, isolated: actions.isolated_capabilities },
          })
        : null,
      log: actions.enabled && actions.receipt_log !== undefined ? receiptLog(actions.receipt_log) : null,
      includeInRunpack: actions.include_in_runpack,
    },
    runs: tracing === null ? countedRuns : tracing.store(countedRuns),
    scenarios: stores.scenarios,
    schemas: stores.schemas,
    evidence,
    dispatchPolicy: createDispatchPolicy(config.policy),
    scopes: new ScopeGuard(
      { allowDefault: config.namespace.allow_default, defaultTenants: config.namespace.default_tenants },
      config.server.auth.tenant_isolation ? principals : null,
      config.namespace.authority.assetcore === undefined
        ? null
        : assetcoreAuthority(config.namespace.authority.assetcore),
      audit,
    ),
    principals,
    feedback: config.server.feedback.scenario_next,
    runpacks: {
      root: runpackRoot(config),
      security: {
        dev_permissive: config.dev.permissive,
        namespace_authority: config.namespace.authority.mode === "assetcore_http" ? "assetcore_catalog" : "dg_registry",
      },
      anchorPolicy:
        config.anchors.providers.length === 0
          ? undefined
          : {
              providers: config.anchors.providers.map((entry) => ({
                provider_id: entry.provider_id,
                requirement: { anchor_type: entry.anchor_type, required_fields: [...entry.required_fields].sort() },
              })),
            },
      signer: keys.runpackSigner,
      attestation: runpackAttestationOf(config),
    },
    schemaRegistry: {
      maxSchemaBytes: Number(config.schema_registry.max_schema_bytes),
      maxEntries: config.schema_registry.max_entries === undefined ? null : Number(config.schema_registry.max_entries),
      acl: new RegistryAcl(config.schema_registry.acl, principals),
      signingKeys: keys.registry,
    },
    providerDiscovery: {
      allowlist: config.provider_discovery.allowlist,
      denylist: config.provider_discovery.denylist,
      maxResponseBytes: Number(config.provider_discovery.max_response_bytes),
    },
    docs: docs.enabled
      ? {
          catalog: DocsCatalog.fromConfig({ ...docs, extra_paths: docs.extra_paths }),
          maxSections: Number(docs.max_sections),
          search: docs.enable_search,
          resources: docs.enable_resources,
        }
      : null,
  };
}

/** The signer of exported manifests, loaded now so that a bad key stops the server from starting. */
async function runpackSignerOf(config: DecisionGateConfig): Promise<ManifestSigner | undefined> {
  const storage = config.runpack_storage;
  if (storage.type !== "filesystem" || storage.signing_key === undefined) return undefined;
  return loadManifestSigner(storage.signing_key);
}

function runpackAttestationOf(config: DecisionGateConfig): { verifierId: string } | undefined {
  const storage = config.runpack_storage;
  if (storage.type !== "filesystem" || !storage.attestation) return undefined;
  return { verifierId: storage.attestation_verifier_id };
}

/** The directory runpacks are written under. Object-store runpack storage is not available in this server. */
function runpackRoot(config: DecisionGateConfig): string {
  const storage = config.runpack_storage;
  if (storage.type === "object_store") {
    throw new ServePolicyError(
      'runpack_storage type "object_store" is not supported by this server; use type = "filesystem" with a root',
    );
  }
  return storage.root;
}
