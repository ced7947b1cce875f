import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { hashCanonical } from "../../src/json/hash.js";
import type { JsonObject } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import {
  type AuditLog,
  type AuditSettings,
  auditCorrelation,
  auditMethodOf,
  createAuditLog,
  fingerprint,
  type McpRequestEvent,
  type PrecheckAuditEvent,
  REDACTED,
  type RegistryAuditEvent,
  type SecurityAuditEvent,
  type TenantAuthzEvent,
  type ToolAuthzEvent,
  type UsageAuditEvent,
} from "../../src/server/audit.js";
import { LOCAL_STDIO } from "../../src/server/context.js";

const NOW = 1_700_000_000_123;
const SECRET = "sup3r-secret";
const directory = mkdtempSync(join(tmpdir(), "dg-audit-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** A stream that keeps everything written to it, synchronously. */
function capture() {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString("utf8");
      done();
    },
  });
  return {
    stream,
    text: () => text,
    lines: () => linesOf(text),
  };
}

function linesOf(text: string): Array<Record<string, unknown>> {
  expect(text === "" || text.endsWith("\n")).toBe(true);
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const ENABLED: AuditSettings = { enabled: true, logPrecheckPayloads: false };

/** An audit log writing to captured streams: `audit` for the audit destination, `stderr` for standard error. */
function openLog(settings: AuditSettings = ENABLED, injectAudit = true) {
  const audit = capture();
  const stderr = capture();
  const log = createAuditLog(settings, {
    ...(injectAudit ? { stream: audit.stream } : {}),
    stderr: stderr.stream,
    now: () => NOW,
  });
  return { log, audit, stderr };
}

/** Compares a parsed line with the expected object, key order included. */
function expectLine(actual: Record<string, unknown> | undefined, expected: Record<string, unknown>): void {
  expect(Object.entries(actual ?? {})).toEqual(Object.entries(expected));
}

const correlation = { request_id: "7", unsafe_client_correlation_id: "client-1", server_correlation_id: "dg-a-1" };

const mcpRequest: McpRequestEvent = {
  ...correlation,
  transport: "http",
  peer_ip: "127.0.0.1",
  method: "ToolsCall",
  tool: "scenario_next",
  outcome: "Ok",
  error_code: null,
  error_kind: null,
  request_bytes: 120,
  response_bytes: 480,
  client_subject: null,
  client_subject_untrusted: null,
};

const toolAuthzDeny: ToolAuthzEvent = {
  ...correlation,
  decision: "deny",
  action: "tools/list",
  transport: "http",
  peer_ip: "10.0.0.5",
  auth_method: null,
  subject: null,
  token_fingerprint: null,
  reason: "unauthenticated: invalid bearer token",
};

const tenantAuthz: TenantAuthzEvent = {
  ...correlation,
  tool: "scenario_start",
  allowed: true,
  reason: "noop_allow",
  principal_id: "loopback",
  tenant_id: 18_446_744_073_709_551_615n,
  namespace_id: null,
};

const usage: UsageAuditEvent = {
  ...correlation,
  tool: "evidence_query",
  tenant_id: 1n,
  namespace_id: 2n,
  principal_id: "stdio",
  metric: "evidence_queries",
  units: 1,
  allowed: true,
  reason: "noop_allow",
};

const registry: RegistryAuditEvent = {
  ...correlation,
  tenant_id: 1n,
  namespace_id: 9_007_199_254_740_993n,
  action: "register",
  allowed: false,
  reason: "builtin_deny_write",
  principal_id: "token:abc",
  roles: ["NamespaceReader"],
  policy_class: "prod",
  schema_id: null,
  schema_version: null,
};

const precheck: PrecheckAuditEvent = {
  unsafe_client_correlation_id: null,
  server_correlation_id: "dg-a-2",
  tenant_id: 1n,
  namespace_id: 1n,
  scenario_id: "release",
  stage_id: null,
  schema_id: "shape",
  schema_version: "v1",
  request: { payload: { count: 18_446_744_073_709_551_615n, ratio: 0.5 } },
  response: { decision: { kind: "hold" } },
};

const security: SecurityAuditEvent = {
  unsafe_client_correlation_id: null,
  server_correlation_id: "dg-a-3",
  kind: "invalid_correlation_id",
  message: "correlation_id_rejected: contains_whitespace",
  dev_permissive: false,
  namespace_authority: "n/a",
};

/** Writes one of each audit-destination event. */
function writeAuditEvents(log: AuditLog): void {
  log.mcpRequest(mcpRequest);
  log.tenantAuthz(tenantAuthz);
  log.usage(usage);
  log.registry(registry);
  log.precheck(precheck);
  log.security(security);
}

describe("audit events", () => {
  it("writes mcp_request with the derived redaction label and every field", () => {
    const { log, audit } = openLog();
    log.mcpRequest(mcpRequest);
    log.mcpRequest({ ...mcpRequest, tool: "evidence_query" });
    const [plain, evidence] = audit.lines();
    expectLine(plain, {
      event: "mcp_request",
      timestamp_ms: NOW,
      ...correlation,
      transport: "http",
      peer_ip: "127.0.0.1",
      method: "ToolsCall",
      tool: "scenario_next",
      outcome: "Ok",
      error_code: null,
      error_kind: null,
      request_bytes: 120,
      response_bytes: 480,
      client_subject: null,
      client_subject_untrusted: null,
      redaction: "full",
    });
    expect(evidence?.redaction).toBe("evidence");
  });

  it("writes a rejected request with nulls for everything unknown", () => {
    const { log, audit } = openLog();
    log.mcpRequest({
      request_id: null,
      unsafe_client_correlation_id: null,
      server_correlation_id: "dg-a-9",
      transport: "stdio",
      peer_ip: null,
      method: auditMethodOf(null),
      tool: null,
      outcome: "Error",
      error_code: -32600,
      error_kind: "invalid_request",
      request_bytes: 5,
      response_bytes: 140,
      client_subject: null,
      client_subject_untrusted: null,
    });
    expect(audit.text()).toBe(
      `{"event":"mcp_request","timestamp_ms":${NOW},"request_id":null,"unsafe_client_correlation_id":null,` +
        `"server_correlation_id":"dg-a-9","transport":"stdio","peer_ip":null,"method":"Invalid","tool":null,` +
        `"outcome":"Error","error_code":-32600,"error_kind":"invalid_request","request_bytes":5,"response_bytes":140,` +
        `"client_subject":null,"client_subject_untrusted":null,"redaction":"full"}\n`,
    );
  });

  it("writes mcp_tool_authz for allow and deny, without a timestamp as in the reference", () => {
    const { log, stderr } = openLog();
    log.toolAuthz({
      ...toolAuthzDeny,
      decision: "allow",
      action: "scenario_define",
      auth_method: "bearer_token",
      token_fingerprint: fingerprint(SECRET),
      reason: null,
    });
    log.toolAuthz(toolAuthzDeny);
    const [allow, deny] = stderr.lines();
    expectLine(allow, {
      event: "mcp_tool_authz",
      decision: "allow",
      action: "scenario_define",
      transport: "http",
      peer_ip: "10.0.0.5",
      auth_method: "bearer_token",
      subject: null,
      token_fingerprint: fingerprint(SECRET),
      reason: null,
      ...correlation,
    });
    expectLine(deny, {
      event: "mcp_tool_authz",
      decision: "deny",
      action: "tools/list",
      transport: "http",
      peer_ip: "10.0.0.5",
      auth_method: null,
      subject: null,
      token_fingerprint: null,
      reason: "unauthenticated: invalid bearer token",
      ...correlation,
    });
  });

  it("writes tenant_authz with u64 ids as exact decimal strings", () => {
    const { log, audit } = openLog();
    log.tenantAuthz(tenantAuthz);
    expectLine(audit.lines()[0], {
      event: "tenant_authz",
      timestamp_ms: NOW,
      ...correlation,
      tool: "scenario_start",
      allowed: true,
      reason: "noop_allow",
      principal_id: "loopback",
      tenant_id: "18446744073709551615",
      namespace_id: null,
    });
  });

  it("writes usage_audit", () => {
    const { log, audit } = openLog();
    log.usage(usage);
    expectLine(audit.lines()[0], {
      event: "usage_audit",
      timestamp_ms: NOW,
      ...correlation,
      tool: "evidence_query",
      tenant_id: "1",
      namespace_id: "2",
      principal_id: "stdio",
      metric: "evidence_queries",
      units: 1,
      allowed: true,
      reason: "noop_allow",
    });
  });

  it("writes registry_audit", () => {
    const { log, audit } = openLog();
    log.registry(registry);
    expectLine(audit.lines()[0], {
      event: "registry_audit",
      timestamp_ms: NOW,
      ...correlation,
      tenant_id: "1",
      namespace_id: "9007199254740993",
      action: "register",
      allowed: false,
      reason: "builtin_deny_write",
      principal_id: "token:abc",
      roles: ["NamespaceReader"],
      policy_class: "prod",
      schema_id: null,
      schema_version: null,
    });
  });

  it("writes precheck_audit with hashes only by default", () => {
    const { log, audit } = openLog();
    log.precheck(precheck);
    expectLine(audit.lines()[0], {
      event: "precheck_audit",
      timestamp_ms: NOW,
      unsafe_client_correlation_id: null,
      server_correlation_id: "dg-a-2",
      tenant_id: "1",
      namespace_id: "1",
      scenario_id: "release",
      stage_id: null,
      schema_id: "shape",
      schema_version: "v1",
      request_hash: { algorithm: "sha256", value: hashCanonical(precheck.request).value },
      response_hash: { algorithm: "sha256", value: hashCanonical(precheck.response).value },
      request: null,
      response: null,
      redaction: "hash_only",
    });
    expect(audit.text()).not.toContain("18446744073709551615");
  });

  it("writes precheck payloads exactly (big integers included) when log_precheck_payloads is on", () => {
    const { log, audit } = openLog({ ...ENABLED, logPrecheckPayloads: true });
    log.precheck(precheck);
    const text = audit.text();
    expect(text).toContain(
      '"request":{"payload":{"count":18446744073709551615,"ratio":0.5}},"response":{"decision":{"kind":"hold"}},' +
        '"redaction":"payload"}',
    );
    expect(audit.lines()[0]?.request_hash).toEqual(hashCanonical(precheck.request));
  });

  it("writes security_audit", () => {
    const { log, audit } = openLog();
    log.security(security);
    log.security({
      ...security,
      server_correlation_id: null,
      kind: "dev_permissive_enabled",
      message: "dev-permissive mode enabled",
      dev_permissive: true,
      namespace_authority: "dg_registry",
    });
    const [rejected, permissive] = audit.lines();
    expectLine(rejected, {
      event: "security_audit",
      timestamp_ms: NOW,
      unsafe_client_correlation_id: null,
      server_correlation_id: "dg-a-3",
      kind: "invalid_correlation_id",
      message: "correlation_id_rejected: contains_whitespace",
      dev_permissive: false,
      namespace_authority: "n/a",
    });
    expect(permissive?.server_correlation_id).toBeNull();
  });

  it("writes a caller-chosen name or an untrusted subject as a bounded prefix, never half a surrogate pair", () => {
    const { log, audit, stderr } = openLog();
    const name = `${"t".repeat(63)}😀${"x".repeat(100_000)}`;
    log.mcpRequest({ ...mcpRequest, tool: name, client_subject_untrusted: "s".repeat(10_000) });
    log.toolAuthz({ ...toolAuthzDeny, action: name });
    const [request] = audit.lines();
    expect(request?.tool).toBe(`${"t".repeat(63)}…`);
    expect(request?.client_subject_untrusted).toBe(`${"s".repeat(256)}…`);
    expect(stderr.lines()[0]?.action).toBe(`${"t".repeat(63)}…`);
    // Every known name is far shorter and written as it is.
    log.mcpRequest({ ...mcpRequest, tool: "provider_check_schema_get" });
    expect(audit.lines()[1]?.tool).toBe("provider_check_schema_get");
  });

  it("writes a null for a field a caller left undefined instead of omitting it", () => {
    const { log, audit } = openLog();
    log.mcpRequest({ ...mcpRequest, peer_ip: undefined as unknown as null });
    expect(audit.lines()[0]).toHaveProperty("peer_ip", null);
  });
});

describe("audit destinations", () => {
  it("writes every event to standard error when enabled without a path", () => {
    const { log, stderr } = openLog(ENABLED, false);
    writeAuditEvents(log);
    log.toolAuthz(toolAuthzDeny);
    expect(stderr.lines().map((line) => line.event)).toEqual([
      "mcp_request",
      "tenant_authz",
      "usage_audit",
      "registry_audit",
      "precheck_audit",
      "security_audit",
      "mcp_tool_authz",
    ]);
  });

  it("appends to the file across instances, creating it and its directory, with mcp_tool_authz on stderr", async () => {
    const path = join(directory, "nested", "audit.jsonl");
    const settings: AuditSettings = { ...ENABLED, path };
    for (const requestId of ["1", "2"]) {
      const stderr = capture();
      const log = createAuditLog(settings, { stderr: stderr.stream, now: () => NOW });
      log.mcpRequest({ ...mcpRequest, request_id: requestId });
      // Batched: the line is written by `flush()` (which transports await before answering), at the latest.
      await log.flush();
      expect(readFileSync(path, "utf8")).toContain(`"request_id":"${requestId}"`);
      log.toolAuthz(toolAuthzDeny);
      await log.close();
      expect(stderr.lines().map((line) => line.event)).toEqual(["mcp_tool_authz"]);
    }
    const lines = linesOf(readFileSync(path, "utf8"));
    expect(lines.map((line) => [line.event, line.request_id])).toEqual([
      ["mcp_request", "1"],
      ["mcp_request", "2"],
    ]);
  });

  it("writes the file in batches: on flush, at the end of the event-loop turn, and on close", async () => {
    const path = join(directory, "batched", "audit.jsonl");
    const log = createAuditLog({ ...ENABLED, path }, { stderr: capture().stream, now: () => NOW });
    const requestIds = () => linesOf(readFileSync(path, "utf8")).map((line) => line.request_id);
    log.mcpRequest({ ...mcpRequest, request_id: "1" });
    log.tenantAuthz({ ...tenantAuthz, request_id: "1" });
    expect(readFileSync(path, "utf8")).toBe("");
    const flushed = log.flush();
    log.mcpRequest({ ...mcpRequest, request_id: "2" });
    await flushed;
    expect(requestIds()).toEqual(["1", "1", "2"]);
    log.mcpRequest({ ...mcpRequest, request_id: "3" });
    await new Promise((resolve) => setImmediate(resolve));
    expect(requestIds()).toEqual(["1", "1", "2", "3"]);
    log.mcpRequest({ ...mcpRequest, request_id: "4" });
    await log.close();
    expect(requestIds()).toEqual(["1", "1", "2", "3", "4"]);
  });

  it("writes buffered lines when the process exits, also after an uncaught exception", async () => {
    const audit = new URL("../../src/server/audit.ts", import.meta.url).href;
    const tsx = new URL("../../node_modules/tsx/dist/esm/index.mjs", import.meta.url).pathname;
    for (const [name, ending] of [
      ["exit", "process.exit(3);"],
      ["throw", "throw new Error('boom');"],
    ] as const) {
      const path = join(directory, `exit-${name}.jsonl`);
      const script = [
        `import { createAuditLog } from ${JSON.stringify(audit)};`,
        `const log = createAuditLog({ enabled: true, path: ${JSON.stringify(path)}, logPrecheckPayloads: false });`,
        `log.security(${JSON.stringify({ ...security, server_correlation_id: name })});`,
        ending,
      ].join("\n");
      const child = spawnSync(process.execPath, ["--import", tsx, "--input-type=module", "-e", script], {
        encoding: "utf8",
      });
      expect(child.status, child.stderr).toBe(name === "exit" ? 3 : 1);
      expect(linesOf(readFileSync(path, "utf8")).map((line) => line.server_correlation_id)).toEqual([name]);
    }
  });

  it("fails with a config error when the audit file cannot be opened", () => {
    expect(() => createAuditLog({ ...ENABLED, path: directory }, { stderr: capture().stream })).toThrow(
      /audit log open failed/,
    );
  });

  it("writes nothing when disabled, except mcp_tool_authz to standard error", async () => {
    const path = join(directory, "disabled", "audit.jsonl");
    const { log, audit, stderr } = openLog({ enabled: false, path, logPrecheckPayloads: true });
    writeAuditEvents(log);
    log.toolAuthz(toolAuthzDeny);
    await log.close();
    expect(audit.text()).toBe("");
    expect(existsSync(path)).toBe(false);
    expect(stderr.lines().map((line) => line.event)).toEqual(["mcp_tool_authz"]);
  });
});

describe("secret hygiene", () => {
  it("never writes a planted bearer credential", () => {
    const { log, audit, stderr } = openLog({ ...ENABLED, logPrecheckPayloads: true });
    log.mcpRequest({ ...mcpRequest, client_subject: `Bearer ${SECRET}` });
    log.toolAuthz({ ...toolAuthzDeny, reason: `unauthenticated: rejected bearer ${SECRET}` });
    log.tenantAuthz({ ...tenantAuthz, reason: `upstream said: BEARER ${SECRET}` });
    log.precheck({
      ...precheck,
      request: { headers: { Authorization: SECRET, "x-note": `Bearer ${SECRET}` }, auth_token: SECRET },
      response: { items: [{ proxy_header: `Bearer ${SECRET}` }] },
    });
    const output = audit.text() + stderr.text();
    expect(output).not.toContain(SECRET);
    expect(audit.lines()[0]?.client_subject).toBe(REDACTED);
    expect(stderr.lines()[0]?.reason).toBe(REDACTED);
    expect(audit.lines()[2]?.request).toEqual({
      headers: { Authorization: REDACTED, "x-note": REDACTED },
      auth_token: REDACTED,
    });
  });

  it("keeps ordinary values, denial phrases and method labels", () => {
    const { log, audit, stderr } = openLog({ ...ENABLED, logPrecheckPayloads: true });
    const payload: JsonObject = {
      reason: "unauthenticated: invalid bearer token",
      other: "missing bearer tokens",
      auth_method: "bearer_token",
      principal_id: "token:0a1b",
      nested: [{ count: 3n, note: "no credential here" }],
    };
    log.toolAuthz({ ...toolAuthzDeny, reason: "unauthenticated: invalid bearer token" });
    log.precheck({ ...precheck, request: payload, response: payload });
    expect(stderr.lines()[0]?.reason).toBe("unauthenticated: invalid bearer token");
    expect(audit.lines()[0]?.request).toEqual({ ...payload, nested: [{ count: 3, note: "no credential here" }] });
  });

  it("escapes every string value as compact JSON does", () => {
    const { log, audit } = openLog();
    const awkward = 'quote " backslash \\ newline \n tab \t nul \u0000 é 😀';
    log.mcpRequest({ ...mcpRequest, peer_ip: awkward, error_kind: awkward });
    const text = audit.text();
    expect(text).toContain(`"peer_ip":${compactJson(awkward)},`);
    expect(audit.lines()[0]?.error_kind).toBe(awkward);
  });

  it("fingerprints tokens as sha256 hex", () => {
    expect(fingerprint("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("labels", () => {
  it("maps JSON-RPC methods to the reference's audit method names", () => {
    const methods = [null, "tools/list", "tools/call", "resources/list", "resources/read", "initialize", "toString"];
    expect(methods.map(auditMethodOf)).toEqual([
      "Invalid",
      "ToolsList",
      "ToolsCall",
      "ResourcesList",
      "ResourcesRead",
      "Other",
      "Other",
    ]);
  });

  it("takes correlation fields from a call context", () => {
    const context = {
      transport: "http" as const,
      dialect: "dg" as const,
      auth: LOCAL_STDIO,
      peerIp: null,
      requestId: '"a"',
      clientCorrelationId: null,
      serverCorrelationId: "dg-b-1",
    };
    expect(auditCorrelation(context)).toEqual({
      request_id: '"a"',
      unsafe_client_correlation_id: null,
      server_correlation_id: "dg-b-1",
    });
  });
});
