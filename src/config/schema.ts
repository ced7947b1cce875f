import { z } from "zod";
import { DispatchPolicyConfig } from "../core/dispatch/policy.js";
import { DEFAULT_VERIFIER_ID } from "../core/runpack/attestation.js";
import { AnyJson, NamespaceId, TenantId } from "../core/wire/common.js";
import { EvidenceConfig } from "../evidence/disclosure.js";
import { McpProviderSettings } from "../evidence/mcp/config.js";
import { ProvidersConfig, ValidationConfig } from "../evidence/registry.js";
import { AnchorsConfig } from "../evidence/trust/anchors.js";
import { DevConfig, TrustConfig } from "../evidence/trust/lanes.js";
import {
  isLoopbackAddress,
  isLoopbackBind,
  parseBind,
  parseHostHeader,
  parseIpNetwork,
  parseWebOrigin,
} from "../net/address.js";
import { databaseUrlProblem } from "../store/postgres/url.js";
import { DEFAULT_STARTUP_CHECK } from "../store/store-check.js";

/*
 * The one schema of `decision-gate.toml` (interface §5): the reference's keys, defaults, enum spellings and
 * validation messages, plus this project's `server.trusted_proxies` and `runpack_storage.type = "filesystem"`.
 * Input integers are `bigint` (TOML integers are parsed as such); sizes, counts and timeouts come out as
 * `number`, tenant and namespace ids stay `bigint`. Descriptions feed the generated JSON Schema and docs.
 */

// ---------------------------------------------------------------------------------------------------------------
// Small helpers shared with other modules
// ---------------------------------------------------------------------------------------------------------------

export const FEEDBACK_LEVELS = ["summary", "trace", "evidence"] as const;
export type FeedbackLevel = (typeof FEEDBACK_LEVELS)[number];

/** `summary` < `trace` < `evidence`. */
export function feedbackRank(level: FeedbackLevel): number {
  return FEEDBACK_LEVELS.indexOf(level);
}

// ---------------------------------------------------------------------------------------------------------------
// Field builders
// ---------------------------------------------------------------------------------------------------------------

const MAX_PATH_BYTES = 4096;
const MAX_PATH_COMPONENT_BYTES = 255;

/** An integer within `[min, max]` (max defaults to the largest safe integer), output as a `number`. */
function integerInRange(range: { min: number; max?: number }, tooSmall: string, tooLarge: string = tooSmall) {
  return z
    .bigint()
    .gte(BigInt(range.min), tooSmall)
    .lte(BigInt(range.max ?? Number.MAX_SAFE_INTEGER), tooLarge)
    .transform(Number);
}

const greaterThanZero = (field: string) =>
  integerInRange({ min: 1 }, `${field} must be greater than zero`, `${field} too large`);

const between = (field: string, min: number, max: number, unit = "") =>
  integerInRange({ min, max }, `${field} must be between ${min} and ${max}${unit}`);

const nonBlank = (message: string) => z.string().refine((text) => text.trim().length > 0, message);

const nonBlankList = (field: string) => z.array(nonBlank(`${field} entries must be non-empty`));

function pathProblem(field: string, path: string): string | undefined {
  if (path.trim().length === 0) return `${field} must be non-empty`;
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) return `${field} exceeds ${MAX_PATH_BYTES} bytes`;
  const components = path.split(/[\\/]/);
  if (components.some((part) => Buffer.byteLength(part) > MAX_PATH_COMPONENT_BYTES)) {
    return `${field} has a path component longer than ${MAX_PATH_COMPONENT_BYTES} bytes`;
  }
  return undefined;
}

/** A filesystem path: non-blank, at most 4096 bytes, components at most 255 bytes. */
function filePath(field: string) {
  return z.string().superRefine((path, context) => {
    const problem = pathProblem(field, path);
    if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
  });
}

/**
 * A list of tool names: entries must be non-blank. Whether each names a tool is checked by the server, which owns
 * the tool table (src/server/validate-config.ts).
 */
function toolList(field: string, tooMany: string) {
  const entry = z.string().refine((name) => name.trim().length > 0, `${field} entries must be non-empty`);
  return z.array(entry).max(128, tooMany).default([]);
}

// ---------------------------------------------------------------------------------------------------------------
// [server]
// ---------------------------------------------------------------------------------------------------------------

const RateLimitConfig = z
  .object({
    max_requests: integerInRange(
      { min: 1, max: 100_000 },
      "rate_limit max_requests must be greater than zero",
      "rate_limit max_requests too large",
    )
      .default(1000)
      .describe("Requests allowed per principal and window."),
    window_ms: between("rate_limit window_ms", 100, 60_000)
      .default(1000)
      .describe("Length of the rate-limit window in milliseconds."),
    max_entries: integerInRange(
      { min: 1, max: 65_536 },
      "rate_limit max_entries must be greater than zero",
      "rate_limit max_entries too large",
    )
      .default(4096)
      .describe("Distinct rate-limit keys tracked at once."),
  })
  .describe("Per-principal request rate limit; absent means no rate limit.");

const LimitsConfig = z
  .object({
    max_inflight: greaterThanZero("max_inflight")
      .default(256)
      .describe("Authenticated requests processed concurrently (counted once their body has arrived)."),
    rate_limit: RateLimitConfig.optional(),
    header_timeout_ms: between("server.limits.header_timeout_ms", 100, 600_000)
      .default(10_000)
      .describe("Time a connection has to send a request's headers; a slower one is answered 408 and closed."),
    request_timeout_ms: between("server.limits.request_timeout_ms", 100, 3_600_000)
      .default(60_000)
      .describe(
        "Time a connection has to send a whole request, headers and body, from its first byte; a slower one is answered 408 and closed. Does not limit how long a tool runs.",
      ),
    idle_timeout_ms: between("server.limits.idle_timeout_ms", 100, 600_000)
      .default(72_000)
      .describe("How long a kept-alive connection may wait for its next request."),
    max_unauthenticated_connections_per_peer: greaterThanZero("server.limits.max_unauthenticated_connections_per_peer")
      .default(256)
      .describe(
        "Open connections per peer address that have not yet carried an authenticated request; further ones are closed at once.",
      ),
  })
  .superRefine((limits, context) => {
    if (limits.header_timeout_ms > limits.request_timeout_ms) {
      context.addIssue({
        code: "custom",
        path: ["header_timeout_ms"],
        message: "server.limits.header_timeout_ms must not exceed request_timeout_ms",
      });
    }
  })
  .describe("Request concurrency, rate and connection limits.");

function bearerTokenProblem(token: string): string | undefined {
  if (token.trim().length === 0) return "auth token must be non-empty";
  if (Buffer.byteLength(token) > 256) return "auth token too long";
  if (token.trim() !== token) return "auth token must not contain whitespace";
  return undefined;
}

const BearerToken = z.string().superRefine((token, context) => {
  const problem = bearerTokenProblem(token);
  if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
});

const MtlsSubject = nonBlank("mTLS subject must be non-empty").refine(
  (subject) => Buffer.byteLength(subject) <= 512,
  "mTLS subject too long",
);

const RoleBinding = z.object({
  name: nonBlank("auth.principals.roles.name must be non-empty").describe(
    "Role name, e.g. TenantAdmin, NamespaceOwner, NamespaceAdmin, NamespaceWriter, NamespaceReader, SchemaManager.",
  ),
  tenant_id: TenantId.optional().describe("Tenant the role is limited to; absent means every tenant."),
  namespace_id: NamespaceId.optional().describe("Namespace the role is limited to; absent means every namespace."),
});

const PrincipalMapping = z.object({
  subject: nonBlank("auth.principals.subject must be non-empty").describe(
    "Principal id: `stdio`, `loopback`, `token:<sha256 hex of the bearer token>`, an mTLS subject or `oauth:<iss>#<sub>` (OAuth tokens).",
  ),
  policy_class: nonBlank("auth.principals.policy_class must be non-empty")
    .optional()
    .describe("Policy class label used by the schema-registry ACL (`prod` when absent)."),
  roles: z
    .array(RoleBinding)
    .max(128, "too many principal roles")
    .default([])
    .describe("Roles granted to the principal."),
});

/** A URL of `[server.auth.oauth]`: https; plain http only for a loopback host (a test's local authorization server). */
function oauthUrl(field: string) {
  return z.string().superRefine((text, context) => {
    const problem = oauthUrlProblem(text);
    if (problem !== undefined) context.addIssue({ code: "custom", message: `${field} ${problem}` });
  });
}

/** What is wrong with an OAuth URL (configured, or read from discovery metadata), or undefined. */
export function oauthUrlProblem(text: string): string | undefined {
  const url = URL.canParse(text) ? new URL(text) : null;
  if (url === null || (url.protocol !== "https:" && url.protocol !== "http:")) return "must be an absolute https URL";
  if (url.hash !== "" || text.includes("#")) return "must not have a fragment";
  if (url.username !== "" || url.password !== "") return "must not carry credentials";
  const loopback = url.hostname === "localhost" || isLoopbackAddress(url.hostname.replace(/^\[|\]$/g, ""));
  if (url.protocol === "http:" && !loopback) return "must use https (http only for a loopback host)";
  return undefined;
}

/** RFC 6749 §3.3 `scope-token`: printable ASCII without space, `"` and `\`. */
const ScopeToken = (field: string) =>
  z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, `${field} must be a scope token (printable ASCII, no spaces)`);

const OAuthConfig = z
  .object({
    issuer: oauthUrl("server.auth.oauth.issuer").describe(
      "The authorization server's issuer identifier; tokens must carry it as `iss`. https (http only for a loopback issuer).",
    ),
    audience: oauthUrl("server.auth.oauth.audience")
      .refine(
        isCanonicalResourceUri,
        "server.auth.oauth.audience must be a canonical resource URI (lower-case scheme and host, no query)",
      )
      .describe(
        "This server's canonical resource URI (RFC 8707), e.g. `https://gate.example.com/mcp`: tokens must name it in `aud`, and the protected-resource metadata publishes it as `resource`.",
      ),
    jwks_uri: oauthUrl("server.auth.oauth.jwks_uri")
      .optional()
      .describe(
        "Where the authorization server publishes its signing keys; absent: read from the issuer's RFC 8414 or OpenID Connect discovery metadata.",
      ),
    required_scopes: z
      .array(ScopeToken("server.auth.oauth.required_scopes entries"))
      .max(32, "too many server.auth.oauth.required_scopes entries")
      .default([])
      .describe("Scopes every token must carry, whatever it calls (403 `insufficient_scope` otherwise)."),
    read_scope: ScopeToken("server.auth.oauth.read_scope")
      .optional()
      .describe(
        "Scope that admits the tools annotated read-only (`write_scope` admits them too); absent: no extra scope.",
      ),
    write_scope: ScopeToken("server.auth.oauth.write_scope")
      .optional()
      .describe("Scope every tool not annotated read-only needs; absent: no extra scope."),
  })
  .describe(
    'The OAuth 2.1 resource server of `mode = "oauth"`: which authorization server\'s JWT access tokens count.',
  );

/** RFC 8707 / MCP: the URI clients send as `resource` must match this one exactly, so it must be written canonically. */
function isCanonicalResourceUri(text: string): boolean {
  if (!URL.canParse(text)) return true; // reported by the URL check
  const url = new URL(text);
  return url.search === "" && !text.endsWith("?") && text.startsWith(`${url.protocol}//${url.host}`);
}

const AuthConfig = z
  .object({
    mode: z
      .enum(["local_only", "bearer_token", "mtls", "oauth"])
      .default("local_only")
      .describe(
        "`local_only`: stdio and loopback callers only; `bearer_token`: `Authorization: Bearer` tokens; `mtls`: the client certificate subject; `oauth`: JWT access tokens of an OAuth 2.1 authorization server (`[server.auth.oauth]`).",
      ),
    bearer_tokens: z
      .array(BearerToken)
      .max(64, "too many auth tokens")
      .default([])
      .describe("Accepted bearer tokens (required for `bearer_token`; at most 256 bytes each)."),
    mtls_subjects: z
      .array(MtlsSubject)
      .max(64, "too many mTLS subjects")
      .default([])
      .describe("Accepted client certificate subjects (required for `mtls`)."),
    allowed_tools: toolList("auth.allowed_tools", "too many tool allowlist entries").describe(
      "When non-empty, only these tools may be called (names as in docs/TOOLS.md).",
    ),
    principals: z
      .array(PrincipalMapping)
      .max(64, "too many principal mappings")
      .default([])
      .describe("Role bindings per principal."),
    tenant_isolation: z
      .boolean()
      .default(false)
      .describe(
        "Every tenant-scoped tool requires a role covering the call's tenant and namespace (a call without a tenant needs a role not limited to tenants), and remote callers' runpack paths stay under `<runpack root>/tenant/<tenant_id>/`. Off: principals drive only the schema-registry ACL, as with the reference.",
      ),
    oauth: OAuthConfig.optional(),
  })
  .superRefine((auth, context) => {
    if (auth.mode === "bearer_token" && auth.bearer_tokens.length === 0) {
      context.addIssue({
        code: "custom",
        path: ["bearer_tokens"],
        message: "bearer_token auth requires bearer_tokens",
      });
    }
    if (auth.mode === "mtls" && auth.mtls_subjects.length === 0) {
      context.addIssue({ code: "custom", path: ["mtls_subjects"], message: "mtls auth requires mtls_subjects" });
    }
    if (auth.tenant_isolation && auth.principals.length === 0) {
      context.addIssue({ code: "custom", path: ["tenant_isolation"], message: "tenant_isolation requires principals" });
    }
    if (auth.mode === "oauth" && auth.oauth === undefined) {
      context.addIssue({ code: "custom", path: ["oauth"], message: "oauth auth requires [server.auth.oauth]" });
    }
    if (auth.mode !== "oauth" && auth.oauth !== undefined) {
      context.addIssue({ code: "custom", path: ["oauth"], message: 'server.auth.oauth requires mode = "oauth"' });
    }
  })
  .describe("Inbound authentication and tool authorization; absent means `local_only`.");

const TlsConfig = z
  .object({
    cert_path: filePath("tls.cert_path").describe("Server certificate chain (PEM)."),
    key_path: filePath("tls.key_path").describe("Server private key (PEM)."),
    client_ca_path: filePath("tls.client_ca_path")
      .optional()
      .describe("CA bundle (PEM) that client certificates must chain to (mTLS)."),
    require_client_cert: z.boolean().default(true).describe("Reject clients without a certificate."),
  })
  .describe("In-process TLS for HTTP/SSE; absent means plain HTTP (or TLS terminated upstream).");

const AuditConfig = z
  .object({
    enabled: z.boolean().default(true).describe("Write JSON-line audit events."),
    path: filePath("audit.path").optional().describe("Audit log file (appended); absent means stderr."),
    log_precheck_payloads: z.boolean().default(false).describe("Include raw `precheck` payloads in audit events."),
  })
  .describe("Structured audit log.");

/** Operational log levels, most to least severe; `silent` turns the log off. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const LogConfig = z
  .object({
    level: z
      .enum(LOG_LEVELS)
      .default("info")
      .describe("Operational log level; `$DECISION_GATE_LOG_LEVEL` overrides it. `debug` adds a line per request."),
    format: z
      .enum(["auto", "json", "pretty"])
      .default("auto")
      .describe("`auto`: human-readable when standard error is a terminal, JSON lines otherwise."),
  })
  .describe("Operational log on standard error (internal errors, per-request lines at `debug`); not the audit log.");

const FeedbackLevelSetting = z.enum(FEEDBACK_LEVELS);

const ScenarioNextFeedback = z
  .object({
    default: FeedbackLevelSetting.default("summary").describe("Feedback level for non-local callers."),
    local_only_default: FeedbackLevelSetting.default("trace").describe("Feedback level for local callers."),
    max: FeedbackLevelSetting.default("trace").describe("Highest feedback level ever returned."),
    trace_subjects: nonBlankList("server.feedback.scenario_next.trace_subjects")
      .default(["loopback", "stdio"])
      .describe("Principal ids allowed `trace` feedback."),
    trace_roles: nonBlankList("server.feedback.scenario_next.trace_roles")
      .default([])
      .describe("Roles allowed `trace` feedback."),
    evidence_subjects: nonBlankList("server.feedback.scenario_next.evidence_subjects")
      .default([])
      .describe("Principal ids allowed `evidence` feedback."),
    evidence_roles: nonBlankList("server.feedback.scenario_next.evidence_roles")
      .default([])
      .describe("Roles allowed `evidence` feedback."),
  })
  .superRefine((feedback, context) => {
    for (const key of ["default", "local_only_default"] as const) {
      if (feedbackRank(feedback[key]) > feedbackRank(feedback.max)) {
        context.addIssue({
          code: "custom",
          path: [key],
          message: `server.feedback.scenario_next.${key} exceeds max`,
        });
      }
    }
  })
  .describe("What `scenario_next` reveals about gate evaluation, per caller.");

const ToolsConfig = z
  .object({
    mode: z
      .enum(["filter", "passthrough"])
      .default("filter")
      .describe("`filter` applies the lists to `tools/list`; `passthrough` lists every tool."),
    allowlist: toolList("server.tools", "too many server.tools entries").describe(
      "When non-empty, only these tools are visible (names as in docs/TOOLS.md).",
    ),
    denylist: toolList("server.tools", "too many server.tools entries").describe("Tools hidden from callers."),
  })
  .describe("Tool visibility.");

const MetricsConfig = z
  .object({
    bind: z
      .string()
      .refine((bind) => parseBind(bind) !== null, "invalid server.metrics.bind address")
      .optional()
      .describe(
        "Serve `/metrics` on this IP-literal socket address (e.g. `127.0.0.1:9464`) instead of the main bind; absent means the main bind.",
      ),
    bearer_token: BearerToken.optional().describe(
      "When set, `/metrics` requires `Authorization: Bearer <token>` (401 otherwise); absent means no authentication.",
    ),
  })
  .describe("Where Prometheus `/metrics` is served, and whether it needs a token.");

const ServerConfig = z
  .object({
    transport: z.enum(["stdio", "http", "sse"]).default("stdio").describe("How clients reach the server."),
    mode: z
      .enum(["strict", "dev_permissive"])
      .default("strict")
      .describe("`dev_permissive` is the legacy spelling of `[dev] permissive = true`."),
    tls_termination: z
      .enum(["server", "upstream"])
      .default("server")
      .describe(
        "`upstream`: a proxy terminates TLS and may pass the mTLS subject in `x-decision-gate-client-subject`.",
      ),
    bind: z
      .string()
      .optional()
      .describe("IP-literal socket address for HTTP/SSE, e.g. `127.0.0.1:4000` or `[::1]:4000`."),
    trusted_proxies: z
      .array(
        z
          .string()
          .refine((entry) => parseIpNetwork(entry) !== null, "expected an IP address or CIDR block such as 10.0.0.0/8"),
      )
      .optional()
      .describe(
        'With `tls_termination = "upstream"`: peers (IP or CIDR) whose subject header is trusted; absent means any peer.',
      ),
    allowed_origins: z
      .array(
        z
          .string()
          .refine(
            (entry) => parseWebOrigin(entry) !== null,
            "server.allowed_origins entries must be web origins such as https://app.example.com",
          ),
      )
      .max(64, "too many server.allowed_origins entries")
      .default([])
      .describe(
        "Web origins (`https://app.example.com`) whose pages may call `/rpc` and `/mcp` from a browser; a request with any other `Origin` header, except the server's own, is refused (403).",
      ),
    allowed_hosts: z
      .array(
        z
          .string()
          .refine(
            (entry) => parseHostHeader(entry) !== null && !/:\d*$/.test(entry),
            "server.allowed_hosts entries must be host names or IP addresses without a port, such as gate.example.com",
          ),
      )
      .max(64, "too many server.allowed_hosts entries")
      .default([])
      .describe(
        "Host names accepted in the `Host` header besides loopback ones. On a loopback bind any other `Host` is refused (421), which stops DNS rebinding; on other binds the header is checked only when this list is set.",
      ),
    max_body_bytes: greaterThanZero("max_body_bytes")
      .default(1_048_576)
      .describe("Largest accepted request body in bytes."),
    limits: LimitsConfig.prefault({}),
    auth: AuthConfig.prefault({}),
    tls: TlsConfig.optional(),
    audit: AuditConfig.prefault({}),
    log: LogConfig.prefault({}),
    feedback: z
      .object({ scenario_next: ScenarioNextFeedback.prefault({}) })
      .prefault({})
      .describe("Feedback disclosure policies."),
    tools: ToolsConfig.prefault({}),
    metrics: MetricsConfig.prefault({}),
  })
  .superRefine((server, context) => {
    const issue = (path: string, message: string) =>
      context.addIssue({ code: "custom", path: path.split("."), message });
    if (server.transport === "stdio") {
      if (server.auth.mode !== "local_only") issue("auth.mode", "stdio transport only supports local_only auth");
      if (server.tls !== undefined) issue("tls", "stdio transport does not support tls");
      return;
    }
    if (server.bind === undefined || server.bind.trim().length === 0) {
      issue("bind", "http/sse transport requires bind address");
    } else if (parseBind(server.bind) === null) {
      issue("bind", "invalid bind address");
    } else if (!isLoopbackBind(server.bind) && server.auth.mode === "local_only") {
      issue("bind", "non-loopback bind disallowed without auth policy");
    }
  })
  .describe("Transport, limits, authentication, TLS, audit, feedback and tool visibility.");

// ---------------------------------------------------------------------------------------------------------------
// [namespace]
// ---------------------------------------------------------------------------------------------------------------

const AssetcoreAuthority = z
  .object({
    base_url: nonBlank("namespace.authority.assetcore.base_url must be non-empty").describe(
      "Asset Core write-daemon base URL.",
    ),
    auth_token: nonBlank("namespace.authority.assetcore.auth_token must be non-empty")
      .optional()
      .describe("Bearer token sent with namespace lookups."),
    connect_timeout_ms: between("connect_timeout_ms", 100, 10_000, " milliseconds")
      .default(500)
      .describe("Connect timeout in milliseconds."),
    request_timeout_ms: between("request_timeout_ms", 500, 30_000, " milliseconds")
      .default(2000)
      .describe("Request timeout in milliseconds."),
  })
  .describe('Asset Core namespace lookups (`mode = "assetcore_http"`).');

const NamespaceAuthority = z
  .object({
    mode: z
      .enum(["none", "assetcore_http"])
      .default("none")
      .describe("`assetcore_http` checks every namespace id against Asset Core."),
    assetcore: AssetcoreAuthority.optional(),
  })
  .superRefine((authority, context) => {
    if (authority.mode === "assetcore_http" && authority.assetcore === undefined) {
      context.addIssue({
        code: "custom",
        path: ["assetcore"],
        message: "namespace.authority.mode=assetcore_http requires namespace.authority.assetcore",
      });
    }
    if (authority.mode === "none" && authority.assetcore !== undefined) {
      context.addIssue({
        code: "custom",
        path: ["assetcore"],
        message: "namespace.authority.assetcore requires namespace.authority.mode=assetcore_http",
      });
    }
  })
  .describe("Who decides whether a namespace exists.");

const NamespaceConfig = z
  .object({
    allow_default: z.boolean().default(false).describe("Allow the default namespace id 1."),
    default_tenants: z
      .array(TenantId)
      .default([])
      .describe("Tenants that may use the default namespace (required with `allow_default`)."),
    authority: NamespaceAuthority.prefault({}),
  })
  .refine((namespace) => !namespace.allow_default || namespace.default_tenants.length > 0, {
    path: ["default_tenants"],
    message: "namespace.allow_default requires namespace.default_tenants",
  })
  .describe("Namespace policy.");

// ---------------------------------------------------------------------------------------------------------------
// [provider_discovery], [run_state_store], [schema_registry], [docs], [runpack_storage]
// ---------------------------------------------------------------------------------------------------------------

const ProviderDiscoveryConfig = z
  .object({
    allowlist: nonBlankList("provider_discovery.allowlist")
      .default([])
      .describe("Providers whose contracts may be disclosed; empty means all."),
    denylist: nonBlankList("provider_discovery.denylist")
      .default([])
      .describe("Providers whose contracts are never disclosed."),
    max_response_bytes: greaterThanZero("provider_discovery.max_response_bytes")
      .default(1_048_576)
      .describe("Largest discovery response in bytes."),
  })
  .describe("What `providers_list`, `provider_contract_get` and `provider_check_schema_get` disclose.");

/** A PostgreSQL connection URL. Messages never repeat the value: it may carry a password. */
function databaseUrl(field: string) {
  return z.string().superRefine((url, context) => {
    const problem = databaseUrlProblem(url);
    if (problem !== undefined) context.addIssue({ code: "custom", message: `${field} ${problem}` });
  });
}

/** The keys `[run_state_store]` and `[schema_registry]` share. */
function storeShape(label: string) {
  return {
    type: z
      .enum(["memory", "sqlite", "postgres"])
      .default("memory")
      .describe("`memory` (lost on restart), `sqlite` (one machine) or `postgres` (shared by several replicas)."),
    path: filePath(`${label}.path`).optional().describe("SQLite database file (required for `sqlite`)."),
    url: databaseUrl(`${label}.url`)
      .optional()
      .describe(
        "PostgreSQL connection URL for `postgres` (libpq form: `postgres://user:password@host:5432/db?sslmode=verify-full`); absent: the environment variable `DECISION_GATE_DATABASE_URL`. The password never appears in errors or logs.",
      ),
    max_connections: integerInRange({ min: 1, max: 1000 }, `${label}.max_connections must be 1 to 1000`)
      .optional()
      .describe(
        "PostgreSQL: connections this replica keeps at most to the section's database (default 10; sections on one URL share one pool, sized by `run_state_store`'s). Up to half may be held by calls queued for a run another replica is writing.",
      ),
    busy_timeout_ms: integerInRange({ min: 0 }, `${label}.busy_timeout_ms must not be negative`)
      .default(5000)
      .describe("SQLite busy timeout in milliseconds."),
    journal_mode: z.enum(["wal", "delete"]).default("wal").describe("SQLite journal mode."),
    sync_mode: z.enum(["full", "normal"]).default("full").describe("SQLite `synchronous` setting."),
  };
}

function checkStorePath(label: string) {
  return (
    store: {
      type: "memory" | "sqlite" | "postgres";
      path?: string | undefined;
      url?: string | undefined;
      max_connections?: number | undefined;
    },
    context: z.RefinementCtx,
  ) => {
    if (store.type === "sqlite" && store.path === undefined) {
      context.addIssue({ code: "custom", path: ["path"], message: `sqlite ${label} requires path` });
    }
    if (store.type !== "sqlite" && store.path !== undefined) {
      context.addIssue({ code: "custom", path: ["path"], message: `${store.type} ${label} must not set path` });
    }
    for (const key of ["url", "max_connections"] as const) {
      if (store.type !== "postgres" && store[key] !== undefined) {
        context.addIssue({ code: "custom", path: [key], message: `${store.type} ${label} must not set ${key}` });
      }
    }
  };
}

const RunStateStoreConfig = z
  .object({
    ...storeShape("run_state_store"),
    max_versions: greaterThanZero("run_state_store.max_versions")
      .optional()
      .describe("Snapshots kept per run; absent keeps all."),
    startup_check: z
      .enum(["full", "quick", "off"])
      .default(DEFAULT_STARTUP_CHECK)
      .describe(
        "What a SQLite store must pass before it is served: `full` (integrity_check, every record of every run), `quick` (quick_check, each run's head and newest record) or `off`; a damaged store is refused, naming the file.",
      ),
  })
  .superRefine(checkStorePath("run_state_store"))
  .describe("Where runs are stored.");

const RegistryAclRule = z.object({
  effect: z.enum(["allow", "deny"]).describe("Decision when the rule matches."),
  actions: z
    .array(z.enum(["register", "list", "get"]))
    .default([])
    .describe("Registry actions covered; empty means all."),
  tenants: z.array(TenantId).default([]).describe("Tenant ids covered; empty means all."),
  namespaces: z.array(NamespaceId).default([]).describe("Namespace ids covered; empty means all."),
  subjects: nonBlankList("schema_registry.acl.rules.subjects")
    .default([])
    .describe("Principal ids covered; empty means all."),
  roles: nonBlankList("schema_registry.acl.rules.roles").default([]).describe("Roles covered; empty means all."),
  policy_classes: nonBlankList("schema_registry.acl.rules.policy_classes")
    .default([])
    .describe("Policy classes covered (exact match); empty means all."),
});

const RegistryAclConfig = z
  .object({
    mode: z
      .enum(["builtin", "custom"])
      .default("builtin")
      .describe("`builtin`: role-based rules; `custom`: the ordered `rules`."),
    default: z.enum(["deny", "allow"]).default("deny").describe("Decision when no custom rule matches."),
    allow_local_only: z
      .boolean()
      .default(false)
      .describe("Builtin mode: local callers (stdio, loopback) may use the registry without roles."),
    require_signing: z
      .boolean()
      .default(false)
      .describe(
        "`schemas_register` requires `signing` with non-blank `key_id` and `signature`; with `signing_keys`, an " +
          "Ed25519 signature (base64) over the canonical JSON of the schema by one of them. Without `signing_keys` " +
          "signatures are checked for presence only (a startup warning says so).",
      ),
    signing_keys: z
      .array(filePath("schema_registry.acl.signing_keys"))
      .max(64, "too many schema_registry.acl.signing_keys")
      .default([])
      .describe(
        "Ed25519 public key files (32 raw bytes or base64) trusted for schema signatures; a signature's `key_id` " +
          "is the path exactly as written here. Relative paths resolve as `[paths] relative_to` says.",
      ),
    rules: z
      .array(RegistryAclRule)
      .max(256, "too many schema_registry.acl.rules")
      .default([])
      .describe("Custom rules, first match wins."),
  })
  .describe("Access control for `schemas_register`, `schemas_list` and `schemas_get`.");

const SchemaRegistryConfig = z
  .object({
    ...storeShape("schema_registry"),
    max_schema_bytes: between("schema_registry.max_schema_bytes", 1, 10_485_760)
      .default(1_048_576)
      .describe("Largest registered schema in bytes."),
    max_entries: greaterThanZero("schema_registry.max_entries")
      .optional()
      .describe("Schemas allowed per tenant and namespace; absent means unlimited."),
    acl: RegistryAclConfig.prefault({}),
  })
  .superRefine(checkStorePath("schema_registry"))
  .describe("Where data-shape schemas are registered.");

const DocsConfig = z
  .object({
    enabled: z.boolean().default(true).describe("Serve documentation at all."),
    enable_search: z.boolean().default(true).describe("Offer the `decision_gate_docs_search` tool."),
    enable_resources: z.boolean().default(true).describe("Offer docs as MCP resources."),
    include_default_docs: z.boolean().default(true).describe("Include the built-in documentation."),
    extra_paths: z
      .array(filePath("docs.extra_paths"))
      .max(64, "too many docs.extra_paths entries")
      .default([])
      .describe("Extra Markdown files or directories to serve."),
    max_doc_bytes: between("docs.max_doc_bytes", 1, 1_048_576)
      .default(262_144)
      .describe("Largest single document in bytes."),
    max_total_bytes: between("docs.max_total_bytes", 1, 8_388_608)
      .default(1_048_576)
      .describe("Total documentation size in bytes."),
    max_docs: between("docs.max_docs", 1, 256).default(32).describe("Most documents served."),
    max_sections: between("docs.max_sections", 1, 10).default(10).describe("Most sections a search returns."),
  })
  .describe("Documentation search and resources.");

export const DEFAULT_RUNPACK_ROOT = "./runpacks";

const FilesystemRunpackStorage = z
  .object({
    type: z.literal("filesystem").describe("Runpacks on the local filesystem."),
    root: filePath("runpack_storage.root")
      .default(DEFAULT_RUNPACK_ROOT)
      .describe("Directory that remote callers' runpack paths are confined to."),
    signing_key: filePath("runpack_storage.signing_key")
      .optional()
      .describe(
        "Ed25519 private key (PKCS#8 PEM) with which `runpack_export` signs every manifest it writes " +
          "(`<manifest>.sig.json`); verify with `decision-gate runpack verify --verify-key`.",
      ),
    attestation: z
      .boolean()
      .default(false)
      .describe(
        "Also write `<manifest>.intoto.dsse.json` beside every exported manifest: an in-toto SLSA verification " +
          "summary of the run in a DSSE envelope signed with `signing_key` (required). See RUNPACKS.md.",
      ),
    attestation_verifier_id: z
      .string()
      .refine((uri) => URL.canParse(uri), "runpack_storage.attestation_verifier_id must be a URI")
      .default(DEFAULT_VERIFIER_ID)
      .describe("The attestation's `verifier.id`: a URI naming this server to whoever checks its attestations."),
  })
  .superRefine((storage, context) => {
    if (storage.attestation && storage.signing_key === undefined) {
      context.addIssue({
        code: "custom",
        path: ["attestation"],
        message: "runpack_storage.attestation requires runpack_storage.signing_key",
      });
    }
  })
  .describe("Local runpack directory (this project's default).");

function objectPrefixProblem(prefix: string): string | undefined {
  if (prefix.trim().length === 0) return "runpack_storage.prefix must be non-empty";
  if (prefix.includes("\\")) return "runpack_storage.prefix must not contain backslashes";
  if (Buffer.byteLength(prefix) > MAX_PATH_BYTES) return `runpack_storage.prefix exceeds ${MAX_PATH_BYTES} bytes`;
  if (prefix.startsWith("/")) return "runpack_storage.prefix must be relative";
  const segments = prefix.endsWith("/") ? prefix.slice(0, -1).split("/") : prefix.split("/");
  if (segments.some((segment) => segment === "." || segment === "..")) {
    return "runpack_storage.prefix must not contain . or .. segments";
  }
  if (segments.some((segment) => Buffer.byteLength(segment) > MAX_PATH_COMPONENT_BYTES)) {
    return `runpack_storage.prefix has a segment longer than ${MAX_PATH_COMPONENT_BYTES} bytes`;
  }
  return undefined;
}

const ObjectStoreRunpackStorage = z
  .object({
    type: z.literal("object_store").describe("Runpacks in an S3-compatible object store."),
    provider: z.literal("s3").describe("Object-store provider."),
    bucket: nonBlank("runpack_storage.bucket must be non-empty").describe("Bucket name."),
    region: nonBlank("runpack_storage.region must be non-empty").optional().describe("Region override."),
    endpoint: z
      .string()
      .optional()
      .describe("S3-compatible endpoint URL (`https://`, or `http://` with `allow_http`)."),
    prefix: z
      .string()
      .superRefine((prefix, context) => {
        const problem = objectPrefixProblem(prefix);
        if (problem !== undefined) context.addIssue({ code: "custom", message: problem });
      })
      .optional()
      .describe("Relative key prefix inside the bucket."),
    force_path_style: z.boolean().default(false).describe("Use path-style bucket addressing."),
    allow_http: z.boolean().default(false).describe("Allow an `http://` endpoint."),
  })
  .superRefine((storage, context) => {
    const endpoint = storage.endpoint;
    if (endpoint === undefined) return;
    const issue = (message: string) => context.addIssue({ code: "custom", path: ["endpoint"], message });
    if (!endpoint.startsWith("https://") && !endpoint.startsWith("http://")) {
      issue("runpack_storage.endpoint must start with https:// or http://");
    } else if (endpoint.startsWith("http://") && !storage.allow_http) {
      issue("runpack_storage.endpoint uses http:// and requires allow_http = true");
    }
  })
  .describe("S3-compatible object store (the reference's only backend).");

const RunpackStorageConfig = z
  .discriminatedUnion("type", [FilesystemRunpackStorage, ObjectStoreRunpackStorage])
  .default({
    type: "filesystem",
    root: DEFAULT_RUNPACK_ROOT,
    attestation: false,
    attestation_verifier_id: DEFAULT_VERIFIER_ID,
  })
  .describe("Where runpacks are written and read; absent means the filesystem under `./runpacks`.");

// ---------------------------------------------------------------------------------------------------------------
// [[providers]]: the registry's entry schema, plus the checks the reference runs at load time on MCP entries
// ---------------------------------------------------------------------------------------------------------------

const INSECURE_HTTP = "insecure http requires allow_insecure_http";

/**
 * Keys a `[[providers]]` table accepts without typing them (the registry validates them when it builds the
 * provider): their actual schemas, used for unknown-key detection, the JSON Schema and the docs.
 */
export const OPEN_FIELD_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  "providers[].timeouts": McpProviderSettings.shape.timeouts,
  "providers[].protocol": McpProviderSettings.shape.protocol,
  "providers[].max_retries": McpProviderSettings.shape.max_retries,
  "providers[].retry_backoff_ms": McpProviderSettings.shape.retry_backoff_ms,
  "providers[].stdio_request_timeout_ms": McpProviderSettings.shape.stdio_request_timeout_ms,
  "providers[].follow_redirects": McpProviderSettings.shape.follow_redirects,
};

const Providers = ProvidersConfig.superRefine((entries, context) => {
  entries.forEach((entry, index) => {
    if (entry.type !== "mcp") return;
    const insecure = entry.url?.startsWith("http://") === true && !entry.allow_insecure_http;
    if (insecure) context.addIssue({ code: "custom", path: [index, "url"], message: INSECURE_HTTP });
    for (const issue of McpProviderSettings.safeParse(entry).error?.issues ?? []) {
      if (insecure && issue.path[0] === "url") continue;
      context.addIssue({ code: "custom", path: [index, ...issue.path], message: issue.message });
    }
  });
})
  .default([])
  .describe("Evidence providers; only the providers listed here exist.");

// ---------------------------------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------------------
// [runtime_actions]
// ---------------------------------------------------------------------------------------------------------------

const RuntimeDecisionSetting = z.enum(["allow", "warn", "block"]);
const capabilityList = (what: string) =>
  z.array(nonBlank(`runtime_actions.${what} entries must be non-empty`)).max(64, `too many runtime_actions.${what}`);

const RuntimeActionsConfig = z
  .object({
    enabled: z.boolean().default(true).describe("Issue an action receipt for every decision."),
    mapping: z
      .object({
        start: RuntimeDecisionSetting.default("allow").describe("Runtime decision for a start decision."),
        advance: RuntimeDecisionSetting.default("allow").describe("Runtime decision for an advance."),
        complete: RuntimeDecisionSetting.default("allow").describe("Runtime decision for a completed run."),
        hold: RuntimeDecisionSetting.default("warn").describe(
          "Runtime decision for a hold (a hold behind an integrity failure is always `block`).",
        ),
        fail: RuntimeDecisionSetting.default("block").describe("Runtime decision for a failed run."),
      })
      .prefault({})
      .describe(
        "Decision kind → runtime decision (`allow` → continue, `warn` → isolate_and_continue, `block` → terminate).",
      ),
    isolated_capabilities: capabilityList("isolated_capabilities")
      .default(["private_runner", "unsafe_payload_fetch", "secret_material_access"])
      .describe("Capabilities withdrawn by `isolate_and_continue`."),
    allowed_capabilities: capabilityList("allowed_capabilities")
      .default(["public_metadata_verification"])
      .describe("Capabilities kept by `isolate_and_continue`."),
    receipt_log: filePath("runtime_actions.receipt_log")
      .optional()
      .describe("Append every receipt to this JSON-lines file."),
    include_in_runpack: z
      .boolean()
      .default(false)
      .describe("Export a run's receipts as `artifacts/action_receipts.json` (changes the runpack's root hash)."),
  })
  .describe("The runtime action layer: a metadata-only receipt (continue / isolate / terminate) per decision.");

const TelemetryConfig = z
  .object({
    otlp_endpoint: z
      .string()
      .refine((url) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol), {
        message: "telemetry.otlp_endpoint must be an http(s) URL",
      })
      .optional()
      .describe(
        "OTLP/HTTP traces endpoint (e.g. `http://collector:4318/v1/traces`); absent means no tracing at all (nothing is loaded).",
      ),
    otlp_protocol: z
      .enum(["http/protobuf", "http/json"])
      .default("http/protobuf")
      .describe("How spans are encoded for the collector."),
    otlp_headers: z
      .record(z.string(), z.string())
      .default({})
      .describe("Headers sent with every export (e.g. an API key); never logged."),
    sample_ratio: z
      .number()
      .min(0, "telemetry.sample_ratio must be between 0 and 1")
      .max(1, "telemetry.sample_ratio must be between 0 and 1")
      .default(1)
      .describe("Share of new traces recorded; a caller's sampled `traceparent` is always followed."),
    service_name: nonBlank("telemetry.service_name must be non-empty")
      .default("decision-gate")
      .describe("`service.name` of the exported spans."),
  })
  .describe("OpenTelemetry traces of tool calls, exported over OTLP/HTTP (off unless `otlp_endpoint` is set).");

const PathsConfig = z
  .object({
    relative_to: z
      .enum(["working_directory", "config_file"])
      .default("working_directory")
      .describe(
        "What relative paths in this file resolve against: the server's working directory (as the reference) or " +
          "the directory of this file, so the file means the same wherever the server is started from.",
      ),
  })
  .describe("How relative paths (databases, audit log, TLS files, evidence roots, runpack root) are resolved.");

const DEV_PERMISSIVE_WITH_AUTHORITY = "dev.permissive not allowed when namespace.authority.mode=assetcore_http";

/** Top-level tables in the order the reference validates them (its first error is reported first). */
export const VALIDATION_ORDER = [
  "server",
  "namespace",
  "dev",
  "trust",
  "evidence",
  "validation",
  "policy",
  "run_state_store",
  "schema_registry",
  "anchors",
  "provider_discovery",
  "docs",
  "runpack_storage",
  "runtime_actions",
  "providers",
  "paths",
  "telemetry",
  "client",
] as const;

const ConfigTables = z
  .object({
    server: ServerConfig.prefault({}),
    dev: DevConfig.prefault({}).describe("Dev-permissive mode (explicit opt-in; never in production)."),
    namespace: NamespaceConfig.prefault({}),
    trust: TrustConfig.prefault({}).describe("Evidence trust requirements."),
    evidence: EvidenceConfig.prefault({}).describe("Raw evidence disclosure."),
    provider_discovery: ProviderDiscoveryConfig.prefault({}),
    anchors: AnchorsConfig.prefault({}).describe("Evidence anchors required per provider."),
    validation: ValidationConfig.prefault({}).describe("Comparator validation at scenario definition."),
    policy: DispatchPolicyConfig.prefault({}).describe("Packet dispatch policy (not tool access)."),
    run_state_store: RunStateStoreConfig.prefault({}),
    schema_registry: SchemaRegistryConfig.prefault({}),
    providers: Providers,
    docs: DocsConfig.prefault({}),
    runpack_storage: RunpackStorageConfig,
    runtime_actions: RuntimeActionsConfig.prefault({}),
    paths: PathsConfig.prefault({}),
    telemetry: TelemetryConfig.prefault({}),
    client: z
      .record(z.string(), AnyJson)
      .optional()
      .describe(
        "Settings of the `decision-gate` CLI client (e.g. `[client.auth_profiles.<name>]`); ignored by the server.",
      ),
  })
  .superRefine((config, context) => {
    const permissive = config.dev.permissive || config.server.mode === "dev_permissive";
    if (permissive && config.namespace.authority.mode === "assetcore_http") {
      context.addIssue({ code: "custom", path: ["dev", "permissive"], message: DEV_PERMISSIVE_WITH_AUTHORITY });
    }
  });

/** `decision-gate.toml`. The legacy `server.mode = "dev_permissive"` comes out as `dev.permissive = true`. */
export const DecisionGateConfig = ConfigTables.transform((config) =>
  config.server.mode === "dev_permissive" ? { ...config, dev: { ...config.dev, permissive: true } } : config,
).describe("Configuration of the Decision Gate server (decision-gate.toml).");

export type DecisionGateConfig = z.output<typeof DecisionGateConfig>;
export type DecisionGateConfigInput = z.input<typeof DecisionGateConfig>;
export type ServerConfig = DecisionGateConfig["server"];
export type AuthConfig = ServerConfig["auth"];
export type TlsConfig = NonNullable<ServerConfig["tls"]>;
export type RateLimitConfig = NonNullable<ServerConfig["limits"]["rate_limit"]>;
export type ScenarioNextFeedbackConfig = ServerConfig["feedback"]["scenario_next"];
export type NamespaceConfig = DecisionGateConfig["namespace"];
export type RunStateStoreConfig = DecisionGateConfig["run_state_store"];
export type SchemaRegistryConfig = DecisionGateConfig["schema_registry"];
export type DocsConfig = DecisionGateConfig["docs"];
export type RunpackStorageConfig = DecisionGateConfig["runpack_storage"];
export type TelemetryConfig = DecisionGateConfig["telemetry"];

/**
 * Descriptions of keys whose schemas live in other modules (they carry no zod descriptions). Keys are dotted
 * paths with `[]` for array items, as in the generated docs.
 */
export const REUSED_KEY_DESCRIPTIONS: Readonly<Record<string, string>> = {
  "dev.permissive": "Accept asserted evidence where verified evidence is required (except for exempt providers).",
  "dev.permissive_scope": "What dev-permissive relaxes; only `asserted_evidence_only`.",
  "dev.permissive_ttl_days": "Days after the config file's last change when the startup warning says it expired.",
  "dev.permissive_warn": "Warn at startup while dev-permissive is on.",
  "dev.permissive_exempt_providers": "Providers that keep `trust.min_lane` under dev-permissive.",
  "trust.default_policy":
    'Signature policy for all providers: `"audit"` or `{ require_signature = { keys = ["<key file>", ...] } }`.',
  "trust.default_policy.require_signature": "Require Ed25519-signed evidence.",
  "trust.default_policy.require_signature.keys":
    "Public key files (raw 32 bytes or base64), relative as `[paths] relative_to` says; the configured string is the key id.",
  "trust.min_lane": "Lowest evidence trust lane accepted: `verified` or `asserted`.",
  "evidence.allow_raw_values": "Raw evidence values may be revealed at all.",
  "evidence.require_provider_opt_in": "Raw values are revealed only for providers with `allow_raw = true`.",
  "anchors.providers": "Anchor requirements per provider.",
  "anchors.providers[].provider_id": "Provider whose answers must carry an anchor.",
  "anchors.providers[].anchor_type": "Required `anchor_type`.",
  "anchors.providers[].required_fields": "Fields the anchor value must contain.",
  "validation.strict": "Check comparators against the providers' result schemas at scenario definition.",
  "validation.profile": "Strict validation profile; only `strict_core_v1`.",
  "validation.allow_permissive": "Explicit opt-in required to set `strict = false`.",
  "validation.enable_lexicographic": "Allow lexicographic string comparators (strict mode).",
  "validation.enable_deep_equals": "Allow deep equality on arrays and objects (strict mode).",
  "policy.engine": "`permit_all`, `deny_all`, or `static` (rules in `[policy.static]`).",
  "policy.static": 'Static dispatch rules (required with `engine = "static"`).',
  "policy.static.default": "Decision when no rule matches: `permit` or `deny`.",
  "policy.static.rules": "Ordered rules, first match wins.",
  "policy.static.rules[].effect": "`permit`, `deny`, or `error` (fails the dispatch with `error_message`).",
  "policy.static.rules[].error_message": "Message of an `error` rule.",
  "policy.static.rules[].target_kinds": "Target kinds matched.",
  "policy.static.rules[].targets": "Specific targets matched.",
  "policy.static.rules[].targets[].target_kind": "`agent`, `session`, `external` or `channel`.",
  "policy.static.rules[].targets[].target_id": "Agent, session or channel id (not for `external`).",
  "policy.static.rules[].targets[].system": "External system (only for `external`).",
  "policy.static.rules[].targets[].target": "External target (only for `external`).",
  "policy.static.rules[].require_labels": "Visibility labels the packet must carry.",
  "policy.static.rules[].forbid_labels": "Visibility labels the packet must not carry.",
  "policy.static.rules[].require_policy_tags": "Policy tags the packet must carry.",
  "policy.static.rules[].forbid_policy_tags": "Policy tags the packet must not carry.",
  "policy.static.rules[].content_types": "Content types matched.",
  "policy.static.rules[].schema_ids": "Packet schema ids matched.",
  "policy.static.rules[].packet_ids": "Packet ids matched.",
  "policy.static.rules[].stage_ids": "Stage ids matched.",
  "policy.static.rules[].scenario_ids": "Scenario ids matched.",
  "providers[].name": "Provider id; built-ins are `time`, `env`, `json` and `http`.",
  "providers[].type": "`builtin` or `mcp` (an external MCP server).",
  "providers[].command": "MCP: command line of a stdio server (wins over `url`).",
  "providers[].url": "MCP: HTTP endpoint (`http://` needs `allow_insecure_http`).",
  "providers[].allow_insecure_http": "MCP: allow an `http://` URL.",
  "providers[].capabilities_path":
    "MCP: provider contract JSON file (required), relative as `[paths] relative_to` says.",
  "providers[].auth": "MCP: credentials sent to the provider.",
  "providers[].auth.bearer_token": "MCP: bearer token sent to the provider.",
  "providers[].trust": "Signature policy for this provider (same shape as `trust.default_policy`).",
  "providers[].trust.require_signature": "Require Ed25519-signed evidence from this provider.",
  "providers[].trust.require_signature.keys": "Public key files, relative as `[paths] relative_to` says.",
  "providers[].allow_raw": "This provider opts in to raw value disclosure.",
  "providers[].timeouts": "MCP over HTTP: connect and request timeouts.",
  "providers[].timeouts.connect_timeout_ms": "Connect timeout in milliseconds.",
  "providers[].timeouts.request_timeout_ms": "Request timeout in milliseconds (at least the connect timeout).",
  "providers[].protocol": "MCP: `decision_gate` (the reference's framing) or `mcp` (standard MCP).",
  "providers[].max_retries": "MCP: retries of a transient failure (the reference: none).",
  "providers[].stdio_request_timeout_ms":
    "MCP over stdio: fail a call (and replace the child) after this long; absent: wait, as the reference.",
  "providers[].follow_redirects": "MCP over HTTP: follow redirects, as the reference; `false` refuses them.",
  "providers[].retry_backoff_ms": "MCP: delay before the first retry in milliseconds.",
  "providers[].config":
    "Built-in provider settings: `time` {allow_logical}; `env` {allowlist, denylist, max_value_bytes, max_key_bytes, overrides}; `json` {root, root_id, max_bytes, allow_yaml}; `http` {allow_http, timeout_ms, max_response_bytes, allowed_hosts, user_agent, hash_algorithm, allow_private_networks, allowed_networks}.",
};
