import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { toolDefinitions } from "../../src/server/tools/catalog.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { configDir, runCli, type ServerProcess, startServerProcess } from "../support/server-process.js";
import { sharedPath } from "../support/shared.js";

/*
 * Standard MCP on one long-lived SDK server: requests of different callers at the same time, protocol version
 * negotiation, every tool's `outputSchema` and `structuredContent` through the official SDK client (which checks
 * one against the other), the tool annotations, and integers beyond 2^53 in `structuredContent`.
 */

const TOKENS = { one: "mcp-tenant-one", two: "mcp-tenant-two", operator: "mcp-operator" };
const principalOf = (token: string) => `token:${createHash("sha256").update(token).digest("hex")}`;
/** 2^53 + 1: the smallest positive integer a JavaScript number cannot hold. */
const BEYOND_DOUBLE = "9007199254740993";

const CONFIG = `
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["${TOKENS.one}", "${TOKENS.two}", "${TOKENS.operator}"]
tenant_isolation = true
[[server.auth.principals]]
subject = "${principalOf(TOKENS.one)}"
roles = [{ name = "TenantAdmin", tenant_id = 1 }]
[[server.auth.principals]]
subject = "${principalOf(TOKENS.two)}"
roles = [{ name = "TenantAdmin", tenant_id = 2 }]
[[server.auth.principals]]
subject = "${principalOf(TOKENS.operator)}"
roles = [{ name = "TenantAdmin" }]
[server.audit]
path = "audit.jsonl"
[evidence]
allow_raw_values = true
[runpack_storage]
type = "filesystem"
root = "runpacks"
[[providers]]
name = "time"
type = "builtin"
[[providers]]
name = "json"
type = "builtin"
allow_raw = true
config = { root = "./evidence", root_id = "evidence" }
`;

let server: ServerProcess;
beforeAll(async () => {
  server = await startServerProcess(CONFIG, [], (dir) => {
    mkdirSync(join(dir, "evidence"));
    writeFileSync(join(dir, "evidence", "big.json"), `{"count": ${BEYOND_DOUBLE}}`);
  });
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

async function post(token: string, message: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/mcp`, {
    method: "POST",
    headers: { ...HEADERS, authorization: `Bearer ${token}`, ...headers },
    body: typeof message === "string" ? message : JSON.stringify(message),
  });
  return { status: response.status, body: parseJson(await response.text()) as JsonObject };
}

async function connect(token: string): Promise<Client> {
  const client = new Client({ name: "mcp-test", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  expect(transport.protocolVersion).toBe(LATEST_PROTOCOL_VERSION);
  return client;
}

const logical = (value: number) => ({ kind: "logical", value });
const BIG_QUERY = { provider_id: "json", check_id: "path", params: { file: "big.json", jsonpath: "$.count" } };
const QUERY_CONTEXT = {
  tenant_id: 1,
  namespace_id: 2,
  run_id: "probe",
  scenario_id: "probe",
  stage_id: "probe",
  trigger_id: "probe",
  trigger_time: logical(1),
};

describe("one MCP server for every request", () => {
  it("keeps each request's caller to itself when callers of different tenants call at once", async () => {
    // Both callers use the same JSON-RPC id, as every SDK client does; half of the calls ask for the other tenant.
    // The json provider reads its file off the main thread, so the calls are in the server at the same time.
    const calls = Array.from({ length: 32 }, (_, index) => {
      const caller = index % 2 === 0 ? ("one" as const) : ("two" as const);
      const ownTenant = caller === "one" ? 1 : 2;
      const tenant = index % 4 < 2 ? ownTenant : 3 - ownTenant;
      const message = {
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "evidence_query",
          arguments: { query: BIG_QUERY, context: { ...QUERY_CONTEXT, tenant_id: tenant } },
        },
      };
      return { caller, tenant, ownTenant, correlation: `mcp-call-${index}`, message };
    });
    const answers = await Promise.all(
      calls.map((call) => post(TOKENS[call.caller], call.message, { "x-correlation-id": call.correlation })),
    );
    answers.forEach((answer, index) => {
      const call = calls[index] as (typeof calls)[number];
      expect(answer.status).toBe(200);
      expect(answer.body.id).toBe(1n);
      const result = answer.body.result as JsonObject;
      if (call.tenant === call.ownTenant) {
        expect(result.isError, call.correlation).toBeUndefined();
        expect((result.structuredContent as JsonObject).result).toMatchObject({ value: { value: BEYOND_DOUBLE } });
      } else {
        expect(result.isError, call.correlation).toBe(true);
      }
    });

    // Every authorization line of a call (standard error; the file has the request lines) names its caller.
    const lines = `${readFileSync(join(server.dir, "audit.jsonl"), "utf8")}\n${server.stderr()}`
      .split("\n")
      .filter((line) => line.startsWith('{"event":'))
      .map((line) => JSON.parse(line));
    for (const call of calls) {
      const own = lines.filter((line) => line.unsafe_client_correlation_id === call.correlation);
      const events = own.map((line) => line.event).sort();
      expect(events, call.correlation).toEqual(["mcp_request", "mcp_tool_authz", "tenant_authz"]);
      const fingerprint = createHash("sha256").update(TOKENS[call.caller]).digest("hex");
      expect(own.find((line) => line.event === "mcp_tool_authz")?.token_fingerprint).toBe(fingerprint);
      expect(own.find((line) => line.event === "tenant_authz")).toMatchObject({
        principal_id: principalOf(TOKENS[call.caller]),
        tenant_id: `${call.tenant}`,
        allowed: call.tenant === call.ownTenant,
      });
    }
  });

  it("answers as the SDK's Streamable HTTP transport does: 406, 400, 202 and JSON", async () => {
    const ping = { jsonrpc: "2.0", id: "p", method: "ping" };
    expect(await post(TOKENS.one, ping)).toEqual({ status: 200, body: { result: {}, jsonrpc: "2.0", id: "p" } });
    const notAcceptable = await post(TOKENS.one, ping, { accept: "application/json" });
    expect(notAcceptable.status).toBe(406);
    expect((notAcceptable.body.error as JsonObject).message).toBe(
      "Not Acceptable: Client must accept both application/json and text/event-stream",
    );
    expect(await post(TOKENS.one, "{")).toMatchObject({ status: 400, body: { error: { code: -32700n } } });
    expect(await post(TOKENS.one, { hello: 1 })).toMatchObject({ status: 400, body: { error: { code: -32700n } } });
    const oldVersion = await post(TOKENS.one, ping, { "mcp-protocol-version": "1999-01-01" });
    expect(oldVersion).toMatchObject({ status: 400, body: { error: { code: -32000n } } });
    const notification = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: { ...HEADERS, authorization: `Bearer ${TOKENS.one}` },
      // Refers to a request id another caller may be using right now: a stateless server has nothing to cancel.
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } }),
    });
    expect(notification.status).toBe(202);
    expect(await notification.text()).toBe("");
    const unknown = await post(TOKENS.one, { jsonrpc: "2.0", id: 7, method: "prompts/list" });
    expect(unknown.body).toEqual({ jsonrpc: "2.0", id: 7n, error: { code: -32601n, message: "Method not found" } });
  });
});

describe("protocol version", () => {
  const initialize = (protocolVersion: string) => ({
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion, capabilities: {}, clientInfo: { name: "t", version: "1" } },
  });

  it("negotiates the newest revision the SDK supports, and keeps an older one a client asks for", async () => {
    expect(LATEST_PROTOCOL_VERSION).toBe(SUPPORTED_PROTOCOL_VERSIONS[0]);
    const versionOf = async (asked: string) =>
      ((await post(TOKENS.one, initialize(asked))).body.result as JsonObject).protocolVersion;
    expect(await versionOf(LATEST_PROTOCOL_VERSION)).toBe(LATEST_PROTOCOL_VERSION);
    expect(await versionOf("2025-06-18")).toBe("2025-06-18");
    expect(await versionOf("2099-01-01")).toBe(LATEST_PROTOCOL_VERSION);
    (await connect(TOKENS.one)).close();
  });

  it("negotiates it on stdio too", async () => {
    const dir = configDir('[server]\ntransport = "stdio"\n');
    const result = await runCli(["serve", "--config", join(dir, "decision-gate.toml")], {
      input: `${JSON.stringify(initialize(LATEST_PROTOCOL_VERSION))}\n`,
    });
    expect(JSON.parse(result.stdout).result.protocolVersion).toBe(LATEST_PROTOCOL_VERSION);
  });
});

/** The annotation table of docs/MCP_CLIENTS.md: tool name → hints. */
function documentedHints(): Map<string, Record<string, boolean>> {
  const guide = readFileSync(new URL("../../docs/MCP_CLIENTS.md", import.meta.url), "utf8");
  const hints = new Map<string, Record<string, boolean>>();
  for (const row of guide.matchAll(/^\| (`[^|]+) \| (yes|no) \| (yes|no) \| (yes|no) \| (yes|no) \|/gm)) {
    const [readOnlyHint, destructiveHint, idempotentHint, openWorldHint] = row
      .slice(2, 6)
      .map((cell) => cell === "yes");
    for (const name of (row[1] as string).matchAll(/`([a-z_]+)`/g)) {
      hints.set(name[1] as string, {
        readOnlyHint: readOnlyHint as boolean,
        destructiveHint: destructiveHint as boolean,
        idempotentHint: idempotentHint as boolean,
        openWorldHint: openWorldHint as boolean,
      });
    }
  }
  return hints;
}

describe("tools through the official SDK client", () => {
  it("lists every tool with an output schema and the hints docs/MCP_CLIENTS.md gives and justifies", async () => {
    const client = await connect(TOKENS.operator);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toEqual(toolDefinitions().map((tool) => tool.name));
      const documented = documentedHints();
      expect([...documented.keys()].sort()).toEqual(tools.map((tool) => tool.name).sort());
      for (const tool of tools) {
        expect(tool.outputSchema?.type, tool.name).toBe("object");
        const { readOnlyHint, destructiveHint, idempotentHint, openWorldHint } = tool.annotations ?? {};
        const served = { readOnlyHint, destructiveHint, idempotentHint, openWorldHint };
        expect(served, tool.name).toEqual(documented.get(tool.name));
      }
    } finally {
      await client.close();
    }
  });

  it("calls every tool: each result's structuredContent matches the tool's outputSchema", async () => {
    const client = await connect(TOKENS.operator);
    // The client checks every result against the outputSchema `listTools` gave, and refuses one without
    // structuredContent.
    const { tools } = await client.listTools();
    const called = new Set<string>();
    const call = async (name: string, args: Record<string, unknown>) => {
      const result = await client.callTool({ name, arguments: args });
      expect(result.isError, `${name}: ${JSON.stringify(result.content)}`).toBeFalsy();
      expect(result.structuredContent, name).toBeDefined();
      expect(JSON.parse((result.content as Array<{ text: string }>)[0]?.text ?? "")).toEqual(result.structuredContent);
      called.add(name);
      return result.structuredContent as Record<string, unknown>;
    };
    try {
      const spec = JSON.parse(RELEASE_GATE);
      const run = { run_id: "all-tools", tenant_id: 1, namespace_id: 2 };
      await call("scenario_define", { spec });
      await call("scenarios_list", { tenant_id: 1, namespace_id: 2 });
      const runConfig = { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] };
      const start = { scenario_id: "release-gate", run_config: runConfig, started_at: logical(1) };
      await call("scenario_start", { ...start, issue_entry_packets: true });
      // Idempotent as annotated: starting again is refused and changes nothing; the same trigger replays.
      const again = await client.callTool({
        name: "scenario_start",
        arguments: { ...start, issue_entry_packets: true },
      });
      expect(JSON.parse((again.content as Array<{ text: string }>)[0]?.text ?? "")).toMatchObject({
        code: -32030,
        message: "run already exists: all-tools",
      });
      const trigger = { ...run, trigger_id: "t-1", agent_id: "agent", time: logical(3) };
      const decided = await call("scenario_next", { scenario_id: "release-gate", request: trigger, feedback: "trace" });
      const replayed = await call("scenario_next", { scenario_id: "release-gate", request: trigger });
      expect(replayed.decision).toEqual(decided.decision);
      const submission = {
        ...run,
        submission_id: "s-1",
        payload: { kind: "json", value: { a: 1 } },
        content_type: "application/json",
        submitted_at: logical(4),
      };
      const submitted = await call("scenario_submit", { scenario_id: "release-gate", request: submission });
      expect(await call("scenario_submit", { scenario_id: "release-gate", request: submission })).toEqual(submitted);
      const tick = { ...run, trigger_id: "tick-1", kind: "tick", time: logical(200), source_id: "scheduler" };
      await call("scenario_trigger", { scenario_id: "release-gate", trigger: tick });
      await call("scenario_status", { scenario_id: "release-gate", request: { ...run, requested_at: logical(300) } });
      const context = {
        ...run,
        scenario_id: "release-gate",
        stage_id: "review",
        trigger_id: "q",
        trigger_time: logical(5),
      };
      await call("evidence_query", { query: { provider_id: "time", check_id: "now" }, context });
      await call("providers_list", {});
      await call("provider_contract_get", { provider_id: "time" });
      await call("provider_check_schema_get", { provider_id: "time", check_id: "after" });
      const record = {
        tenant_id: 1,
        namespace_id: 2,
        schema_id: "window",
        version: "1",
        schema: { type: "object", properties: { after_window: { type: "boolean" } } },
        description: null,
        created_at: logical(1),
      };
      await call("schemas_register", { record });
      await call("schemas_list", { tenant_id: 1, namespace_id: 2 });
      await call("schemas_get", { tenant_id: 1, namespace_id: 2, schema_id: "window", version: "1" });
      await call("precheck", {
        tenant_id: 1,
        namespace_id: 2,
        scenario_id: "release-gate",
        data_shape: { schema_id: "window", version: "1" },
        payload: { after_window: true },
      });
      const exported = await call("runpack_export", {
        scenario_id: "release-gate",
        ...run,
        output_dir: "tenant/1/all-tools",
        generated_at: logical(400),
        include_verification: false,
      });
      expect(exported.report).toBeNull();
      await call("runpack_verify", { runpack_dir: "tenant/1/all-tools", manifest_path: "manifest.json" });
      await call("decision_gate_docs_search", { query: "runpack verification" });
      const runtime = sharedPath("fixtures/stage356/docs/runtime/");
      await call("runtime_action_evaluate", {
        receipt: readFileSync(`${runtime}stage356_runtime_execution_receipt.json`, "utf8"),
        gate: readFileSync(`${runtime}stage356_runtime_fail_closed_gate.json`, "utf8"),
        created_at: "2026-07-01T12:00:00Z",
      });
      expect([...called].sort()).toEqual(tools.map((tool) => tool.name).sort());
    } finally {
      await client.close();
    }
  });

  it("writes integers beyond 2^53 in structuredContent as decimal strings, and exactly in the text", async () => {
    const client = await connect(TOKENS.operator);
    try {
      await client.listTools(); // so that the client checks the result against the outputSchema
      const result = await client.callTool({
        name: "evidence_query",
        arguments: { query: BIG_QUERY, context: QUERY_CONTEXT },
      });
      expect(result.isError).toBeFalsy();
      const structured = result.structuredContent as { result: { value: unknown } };
      expect(structured.result.value).toEqual({ kind: "json", value: BEYOND_DOUBLE });
      const text = (result.content as Array<{ text: string }>)[0]?.text as string;
      expect(text).toContain(`"value":${BEYOND_DOUBLE}`);
      const exact = parseJson(text) as { result: { value: { value: bigint } } };
      expect(exact.result.value.value).toBe(BigInt(BEYOND_DOUBLE));
    } finally {
      await client.close();
    }

    // The Decision Gate dialect keeps the exact JSON number, as the reference does.
    const rpc = await fetch(`${server.url}/rpc`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKENS.operator}` },
      body: compactJson({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "evidence_query",
          arguments: { query: BIG_QUERY, context: QUERY_CONTEXT },
        },
      }),
    });
    expect(await rpc.text()).toContain(`"value":${BEYOND_DOUBLE}`);
  });

  it("declares decimal strings wherever an output schema has a number", async () => {
    const client = await connect(TOKENS.operator);
    try {
      const { tools } = await client.listTools();
      const numeric: string[] = [];
      const visit = (node: unknown, path: string, isSchema: boolean): void => {
        if (Array.isArray(node)) {
          for (const [index, item] of node.entries()) visit(item, `${path}/${index}`, isSchema);
          return;
        }
        if (typeof node !== "object" || node === null) return;
        const schema = node as Record<string, unknown>;
        const types = typeof schema.type === "string" ? [schema.type] : schema.type;
        if (isSchema && Array.isArray(types) && types.some((type) => type === "integer" || type === "number")) {
          numeric.push(path);
          // Where the reference's schema did not admit strings already, the string must be a decimal integer.
          expect(types, path).toContain("string");
          if (path === "scenarios_list/items/items/namespace_id") expect(schema.pattern).toBe("^-?(0|[1-9][0-9]*)$");
        }
        for (const [keyword, value] of Object.entries(schema)) {
          if (["const", "default", "enum", "examples"].includes(keyword) && isSchema) continue;
          // `properties` and `$defs` map names (which may be "examples") to schemas.
          const isMap = ["properties", "patternProperties", "$defs", "definitions"].includes(keyword);
          if (isMap) for (const [name, child] of Object.entries(value as object)) visit(child, `${path}/${name}`, true);
          else visit(value, `${path}/${keyword}`, true);
        }
      };
      for (const tool of tools) visit(tool.outputSchema, tool.name, true);
      expect(numeric).toContain("scenarios_list/items/items/namespace_id");
      expect(numeric.length).toBeGreaterThan(20);
    } finally {
      await client.close();
    }
  });
});
