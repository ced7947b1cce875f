import { hashCanonical, sha256Hex } from "../json/hash.js";
import { isJsonObject, type JsonObject, type JsonValue, setOwn } from "../json/value.js";
import { compactJson, escapeString } from "../json/write.js";
import { auditSink, BufferedSink, fdSink, type LineSink, streamSink } from "./audit-sinks.js";
import type { AuthContext, CallContext, TransportName } from "./context.js";
import type { RegistryAction } from "./policy/registry-acl.js";

/*
 * The structured audit log (interface §8.2): one JSON object per line, `event` first, every absent value `null`.
 *
 * `mcp_request.method` and `mcp_request.outcome` carry the reference's Rust variant names (`ToolsCall`, `Ok`), so
 * that log pipelines written for the reference read these lines unchanged.
 *
 * Secret hygiene: events carry token fingerprints and payload hashes, never tokens or bodies (precheck payloads
 * only when `log_precheck_payloads` is on). As a second line of defence every line is scrubbed before writing.
 */

// ---------------------------------------------------------------------------------------------------------------
// Event inputs: the fields of interface §8.2 except `event`, `timestamp_ms` and what the log derives itself.
// ---------------------------------------------------------------------------------------------------------------

/** `mcp_request.method`, as the reference writes it. */
export type AuditMethod = "ToolsList" | "ToolsCall" | "ResourcesList" | "ResourcesRead" | "Invalid" | "Other";
/** `mcp_request.outcome`, as the reference writes it. */
export type AuditOutcome = "Ok" | "Error";
export type UsageMetric =
  | "tool_calls"
  | "runs_started"
  | "evidence_queries"
  | "runpack_exports"
  | "schemas_written"
  | "registry_entries"
  | "storage_bytes";
export type SecurityEventKind = "invalid_correlation_id" | "dev_permissive_enabled";
export type NamespaceAuthorityLabel = "n/a" | "dg_registry" | "assetcore_catalog";

/** Which request an event belongs to. */
export interface AuditCorrelation {
  /** The JSON text of the JSON-RPC id, or null before parsing. */
  request_id: string | null;
  unsafe_client_correlation_id: string | null;
  server_correlation_id: string;
}

/** `mcp_request`: one per request, rejects included. `redaction` is derived from `tool`. */
export interface McpRequestEvent extends AuditCorrelation {
  transport: TransportName;
  peer_ip: string | null;
  method: AuditMethod;
  tool: string | null;
  outcome: AuditOutcome;
  error_code: number | null;
  error_kind: string | null;
  request_bytes: number;
  response_bytes: number;
  /** The subject authentication relies on (mTLS mode): the verified certificate's, or a trusted proxy's header. */
  client_subject: string | null;
  /** An `x-decision-gate-client-subject` header the server did not rely on, as sent (bounded). */
  client_subject_untrusted: string | null;
}

/** `mcp_tool_authz`: every authentication/authorization decision. On deny the auth fields are null. */
export interface ToolAuthzEvent extends AuditCorrelation {
  decision: "allow" | "deny";
  /** `tools/list` or the tool name. */
  action: string;
  transport: TransportName;
  peer_ip: string | null;
  auth_method: AuthContext["method"] | null;
  subject: string | null;
  /** sha256 hex of the bearer token (see `fingerprint`); never the token. */
  token_fingerprint: string | null;
  /** Why access was denied, e.g. `unauthenticated: invalid bearer token`; null on allow. */
  reason: string | null;
}

export interface TenantAuthzEvent extends AuditCorrelation {
  tool: string | null;
  allowed: boolean;
  reason: string;
  principal_id: string;
  tenant_id: bigint | null;
  namespace_id: bigint | null;
}

export interface UsageAuditEvent extends AuditCorrelation {
  tool: string | null;
  tenant_id: bigint | null;
  namespace_id: bigint | null;
  principal_id: string;
  metric: UsageMetric;
  units: number;
  allowed: boolean;
  reason: string;
}

export interface RegistryAuditEvent extends AuditCorrelation {
  tenant_id: bigint;
  namespace_id: bigint;
  action: RegistryAction;
  allowed: boolean;
  reason: string;
  principal_id: string;
  roles: readonly string[];
  policy_class: string | null;
  schema_id: string | null;
  schema_version: string | null;
}

/**
 * `precheck_audit`. The log hashes `request` and `response` (canonical JSON) itself and writes the payloads only
 * when `log_precheck_payloads` is on.
 */
export interface PrecheckAuditEvent {
  unsafe_client_correlation_id: string | null;
  server_correlation_id: string;
  tenant_id: bigint;
  namespace_id: bigint;
  scenario_id: string | null;
  stage_id: string | null;
  schema_id: string;
  schema_version: string;
  request: JsonValue;
  response: JsonValue;
}

export interface SecurityAuditEvent {
  unsafe_client_correlation_id: string | null;
  /** Null for events outside any request, such as `dev_permissive_enabled` at startup. */
  server_correlation_id: string | null;
  kind: SecurityEventKind;
  message: string | null;
  dev_permissive: boolean;
  namespace_authority: NamespaceAuthorityLabel;
}

export interface AuditLog {
  mcpRequest(event: McpRequestEvent): void;
  /** Always written to stderr, whatever `[server.audit]` says (as the reference does). */
  toolAuthz(event: ToolAuthzEvent): void;
  tenantAuthz(event: TenantAuthzEvent): void;
  usage(event: UsageAuditEvent): void;
  registry(event: RegistryAuditEvent): void;
  precheck(event: PrecheckAuditEvent): void;
  security(event: SecurityAuditEvent): void;
  /**
   * Resolves once every line logged so far has been written (handed to the operating system). Lines are
   * buffered and written in batches; a transport awaits this before it sends a response, so that no answered
   * request lacks its audit lines, and the lines of every request answered in one pass share one write.
   */
  flush(): Promise<void>;
  /** Writes what is buffered and closes the audit file, if any; standard error and injected streams stay open. */
  close(): Promise<void>;
}

/** `[server.audit]`. */
export interface AuditSettings {
  enabled: boolean;
  path?: string;
  logPrecheckPayloads: boolean;
}

export interface AuditLogOptions {
  /** Replaces the audit destination (the file, or standard error). */
  stream?: NodeJS.WritableStream;
  /** Replaces standard error, which receives `mcp_tool_authz` and, without a path, every event. */
  stderr?: NodeJS.WritableStream;
  /** Clock for `timestamp_ms`. */
  now?: () => number;
}

// ---------------------------------------------------------------------------------------------------------------
// The log
// ---------------------------------------------------------------------------------------------------------------

/** Opens the audit log; a configured file is created (with its directory) and opened for appending now. */
export function createAuditLog(settings: AuditSettings, options: AuditLogOptions = {}): AuditLog {
  const stderr = options.stderr === undefined ? fdSink(2) : streamSink(options.stderr);
  const audit = settings.enabled ? auditSink(settings.path, options.stream, stderr) : null;
  const now = options.now ?? Date.now;
  const write = (sink: LineSink | null, line: string) => sink?.write(`${line}\n`);
  const batched = [...new Set([stderr, audit])].filter((sink): sink is BufferedSink => sink instanceof BufferedSink);
  return {
    mcpRequest: (event) => write(audit, mcpRequestLine(event, now())),
    toolAuthz: (event) => write(stderr, toolAuthzLine(event)),
    tenantAuthz: (event) => write(audit, tenantAuthzLine(event, now())),
    usage: (event) => write(audit, usageLine(event, now())),
    registry: (event) => write(audit, registryLine(event, now())),
    precheck: (event) => {
      // Skips hashing when nothing would be written.
      if (audit !== null) write(audit, precheckLine(event, now(), settings.logPrecheckPayloads));
    },
    security: (event) => write(audit, securityLine(event, now())),
    flush: () => BufferedSink.flushed(batched),
    close: async () => {
      for (const sink of batched) sink.writeBuffered();
      if (audit !== null && audit !== stderr) await audit.close();
    },
  };
}

/** The id of a bearer token in logs and principal ids: its sha256 as lowercase hex. */
export function fingerprint(token: string): string {
  return sha256Hex(token);
}

const METHODS: Record<string, AuditMethod> = {
  "tools/list": "ToolsList",
  "tools/call": "ToolsCall",
  "resources/list": "ResourcesList",
  "resources/read": "ResourcesRead",
};

/** The `mcp_request.method` label of a JSON-RPC method; null means the request never parsed. */
export function auditMethodOf(method: string | null): AuditMethod {
  if (method === null) return "Invalid";
  return Object.hasOwn(METHODS, method) ? (METHODS[method] as AuditMethod) : "Other";
}

/**
 * The correlation fields of a call, for events raised while handling it. Spread them after an event's first member
 * (`{ tool, ...auditCorrelation(context), … }`): on Node 20, members added after a leading spread cost about a
 * microsecond each.
 */
export function auditCorrelation(
  context: Pick<CallContext, "requestId" | "clientCorrelationId" | "serverCorrelationId">,
): AuditCorrelation {
  return {
    request_id: context.requestId,
    unsafe_client_correlation_id: context.clientCorrelationId,
    server_correlation_id: context.serverCorrelationId,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Lines: fields in the reference's order, every optional value present as null. Each line is written straight to
// text (the log writes several lines per request) instead of building an object and serializing it: every value
// goes through `field`, which scrubs it and encodes it exactly as `compactJson` does.
// ---------------------------------------------------------------------------------------------------------------

/** One field's value: scrubbed, in compact JSON; an absent value is null. */
function field(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return "null";
  if (typeof value === "string") return escapeString(BEARER_CREDENTIAL.test(value) ? REDACTED : value);
  return compactJson(scrubValue(value));
}

function correlationFields(event: AuditCorrelation): string {
  return (
    `"request_id":${field(event.request_id)},` +
    `"unsafe_client_correlation_id":${field(event.unsafe_client_correlation_id)},` +
    `"server_correlation_id":${field(event.server_correlation_id)}`
  );
}

function mcpRequestLine(event: McpRequestEvent, timestamp: number): string {
  return (
    `{"event":"mcp_request","timestamp_ms":${field(timestamp)},${correlationFields(event)},` +
    `"transport":${field(event.transport)},"peer_ip":${field(event.peer_ip)},"method":${field(event.method)},` +
    `"tool":${field(boundedName(event.tool))},"outcome":${field(event.outcome)},` +
    `"error_code":${field(event.error_code)},"error_kind":${field(event.error_kind)},` +
    `"request_bytes":${field(event.request_bytes)},"response_bytes":${field(event.response_bytes)},` +
    `"client_subject":${field(event.client_subject)},` +
    `"client_subject_untrusted":${field(boundedText(event.client_subject_untrusted, MAX_UNTRUSTED_SUBJECT_CHARS))},` +
    // A label only: request payloads are never part of this event.
    `"redaction":${field(event.tool === "evidence_query" ? "evidence" : "full")}}`
  );
}

function toolAuthzLine(event: ToolAuthzEvent): string {
  return (
    `{"event":"mcp_tool_authz","decision":${field(event.decision)},"action":${field(boundedName(event.action))},` +
    `"transport":${field(event.transport)},"peer_ip":${field(event.peer_ip)},` +
    `"auth_method":${field(event.auth_method)},"subject":${field(event.subject)},` +
    `"token_fingerprint":${field(event.token_fingerprint)},"reason":${field(event.reason)},` +
    `${correlationFields(event)}}`
  );
}

function tenantAuthzLine(event: TenantAuthzEvent, timestamp: number): string {
  return (
    `{"event":"tenant_authz","timestamp_ms":${field(timestamp)},${correlationFields(event)},` +
    `"tool":${field(event.tool)},"allowed":${field(event.allowed)},"reason":${field(event.reason)},` +
    `"principal_id":${field(event.principal_id)},"tenant_id":${field(idText(event.tenant_id))},` +
    `"namespace_id":${field(idText(event.namespace_id))}}`
  );
}

function usageLine(event: UsageAuditEvent, timestamp: number): string {
  return (
    `{"event":"usage_audit","timestamp_ms":${field(timestamp)},${correlationFields(event)},` +
    `"tool":${field(event.tool)},"tenant_id":${field(idText(event.tenant_id))},` +
    `"namespace_id":${field(idText(event.namespace_id))},"principal_id":${field(event.principal_id)},` +
    `"metric":${field(event.metric)},"units":${field(event.units)},"allowed":${field(event.allowed)},` +
    `"reason":${field(event.reason)}}`
  );
}

function registryLine(event: RegistryAuditEvent, timestamp: number): string {
  return (
    `{"event":"registry_audit","timestamp_ms":${field(timestamp)},${correlationFields(event)},` +
    `"tenant_id":${field(idText(event.tenant_id))},"namespace_id":${field(idText(event.namespace_id))},` +
    `"action":${field(event.action)},"allowed":${field(event.allowed)},"reason":${field(event.reason)},` +
    `"principal_id":${field(event.principal_id)},"roles":${field([...event.roles])},` +
    `"policy_class":${field(event.policy_class)},"schema_id":${field(event.schema_id)},` +
    `"schema_version":${field(event.schema_version)}}`
  );
}

function precheckLine(event: PrecheckAuditEvent, timestamp: number, withPayloads: boolean): string {
  return (
    `{"event":"precheck_audit","timestamp_ms":${field(timestamp)},` +
    `"unsafe_client_correlation_id":${field(event.unsafe_client_correlation_id)},` +
    `"server_correlation_id":${field(event.server_correlation_id)},` +
    `"tenant_id":${field(idText(event.tenant_id))},"namespace_id":${field(idText(event.namespace_id))},` +
    `"scenario_id":${field(event.scenario_id)},"stage_id":${field(event.stage_id)},` +
    `"schema_id":${field(event.schema_id)},"schema_version":${field(event.schema_version)},` +
    `"request_hash":${field({ ...hashCanonical(event.request) })},` +
    `"response_hash":${field({ ...hashCanonical(event.response) })},` +
    `"request":${field(withPayloads ? event.request : null)},` +
    `"response":${field(withPayloads ? event.response : null)},` +
    `"redaction":${field(withPayloads ? "payload" : "hash_only")}}`
  );
}

function securityLine(event: SecurityAuditEvent, timestamp: number): string {
  return (
    `{"event":"security_audit","timestamp_ms":${field(timestamp)},` +
    `"unsafe_client_correlation_id":${field(event.unsafe_client_correlation_id)},` +
    `"server_correlation_id":${field(event.server_correlation_id)},"kind":${field(event.kind)},` +
    `"message":${field(event.message)},"dev_permissive":${field(event.dev_permissive)},` +
    `"namespace_authority":${field(event.namespace_authority)}}`
  );
}

/**
 * Caller-chosen names (tools, methods) are logged as at most this many characters. Every name this server knows
 * is far shorter; an unknown one is kept as a prefix, so that a line never grows with what a caller sends.
 */
const MAX_NAME_CHARS = 64;
/** An untrusted subject header is kept as a prefix of this many characters. */
const MAX_UNTRUSTED_SUBJECT_CHARS = 256;

/** A caller-chosen tool or method name as logs record it: itself, or its first characters and `…`. */
export function boundedName(name: string): string;
export function boundedName(name: string | null): string | null;
export function boundedName(name: string | null): string | null {
  return boundedText(name, MAX_NAME_CHARS);
}

function boundedText(text: string | null, maxChars: number): string | null {
  if (text === null || text.length <= maxChars) return text;
  const prefix = text.slice(0, maxChars);
  // Never keep half of a surrogate pair.
  return `${/[\uD800-\uDBFF]$/.test(prefix) ? prefix.slice(0, -1) : prefix}…`;
}

/** Tenant and namespace ids are u64: logged as decimal strings, as the reference does. */
function idText(id: bigint | null): string | null {
  return id === null ? null : id.toString();
}

// ---------------------------------------------------------------------------------------------------------------
// Scrubbing
// ---------------------------------------------------------------------------------------------------------------

export const REDACTED = "[redacted]";

/** Keys whose values are credentials wherever they appear: HTTP auth headers and the config's secret fields. */
const SECRET_KEYS = new Set(["authorization", "proxy-authorization", "bearer_token", "bearer_tokens", "auth_token"]);
/** `Bearer <credential>`; the phrases "bearer token(s)" in denial reasons are not credentials. */
const BEARER_CREDENTIAL = /\bbearer\s+(?!tokens?\b)\S/i;

/** A credential key's value is `[redacted]`; any other value is scrubbed. */
function scrubMember(key: string, value: JsonValue): JsonValue {
  return SECRET_KEYS.has(key.toLowerCase()) ? REDACTED : scrubValue(value);
}

/**
 * A copy of `value` in which every string that carries a bearer credential, and every value under a credential key,
 * is `[redacted]`.
 */
function scrubValue(value: JsonValue): JsonValue {
  if (typeof value === "string") return BEARER_CREDENTIAL.test(value) ? REDACTED : value;
  if (Array.isArray(value)) return value.map(scrubValue);
  if (!isJsonObject(value)) return value;
  const scrubbed: JsonObject = {};
  for (const key of Object.keys(value)) {
    const member = value[key];
    if (member !== undefined) setOwn(scrubbed, key, scrubMember(key, member));
  }
  return scrubbed;
}

/** The `mcp_request` line of one handled request, whatever its transport or dialect. */
export function auditRequest(
  audit: AuditLog,
  request: Pick<CallContext, "transport" | "peerIp" | "requestId" | "clientCorrelationId" | "serverCorrelationId">,
  outcome: {
    method: string | null;
    tool: string | null;
    error: { code: number; kind: string } | null;
    requestBytes: number;
    responseBytes: number;
  },
  subject: { trusted: string | null; untrusted: string | null },
): void {
  audit.mcpRequest({
    request_id: request.requestId,
    unsafe_client_correlation_id: request.clientCorrelationId,
    server_correlation_id: request.serverCorrelationId,
    transport: request.transport,
    peer_ip: request.peerIp,
    method: auditMethodOf(outcome.method),
    tool: outcome.tool,
    outcome: outcome.error === null ? "Ok" : "Error",
    error_code: outcome.error?.code ?? null,
    error_kind: outcome.error?.kind ?? null,
    request_bytes: outcome.requestBytes,
    response_bytes: outcome.responseBytes,
    client_subject: subject.trusted,
    client_subject_untrusted: subject.untrusted,
  });
}
