import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

const BASE = `
[namespace]
allow_default = true
default_tenants = [1]

[[providers]]
name = "time"
type = "builtin"
`;

let server: ServerProcess;

beforeAll(async () => {
  server = await startServerProcess(`
[server]
transport = "http"
bind = "127.0.0.1:0"
max_body_bytes = 4096
[server.tools]
denylist = ["precheck"]
${BASE}`);
});
afterAll(async () => {
  await server?.stop();
});

async function rpc(body: string, headers: Record<string, string> = {}, target = server) {
  const response = await fetch(`${target.url}/rpc`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: parseJson(text) as JsonObject };
}

const call = (name: string, args: JsonValue, id: JsonValue = 1n) =>
  compactJson({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });

function errorOf(json: JsonObject) {
  return json.error as {
    code: bigint;
    message: string;
    data: { kind: string; retryable: boolean; request_id: string | null };
  };
}

describe("the Decision Gate dialect's error, status and header contract", () => {
  const table: Array<[string, string, number, number, string, string, string | null]> = [
    ["unparseable JSON", "{nope", 400, -32600, "invalid_request", "invalid json-rpc request", null],
    [
      "a message without an id",
      '{"jsonrpc":"2.0","method":"tools/list"}',
      400,
      -32600,
      "invalid_request",
      "invalid json-rpc request",
      null,
    ],
    [
      "another JSON-RPC version",
      '{"jsonrpc":"1.0","id":7,"method":"tools/list"}',
      400,
      -32600,
      "invalid_request",
      "invalid json-rpc version",
      "7",
    ],
    [
      "an unknown method",
      '{"jsonrpc":"2.0","id":"x","method":"initialize"}',
      400,
      -32601,
      "method_not_found",
      "method not found",
      '"x"',
    ],
    ["an unknown tool", call("scenario_delete", {}), 400, -32601, "method_not_found", "unknown tool", "1"],
    ["a hidden tool", call("precheck", {}), 400, -32601, "method_not_found", "unknown tool", "1"],
    [
      "tools/call without arguments",
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"providers_list"}}',
      400,
      -32602,
      "invalid_params",
      "invalid tool params",
      "1",
    ],
    [
      "an unknown scenario",
      call("scenario_status", {
        scenario_id: "nope",
        request: { run_id: "r", tenant_id: 1, namespace_id: 2, requested_at: { kind: "logical", value: 1 } },
      }),
      200,
      -32004,
      "not_found",
      "scenario not defined",
      "1",
    ],
    [
      "a run that does not exist",
      call("runpack_export", {
        scenario_id: "nope",
        tenant_id: 1,
        namespace_id: 2,
        run_id: "r",
        generated_at: { kind: "logical", value: 1 },
        include_verification: false,
      }),
      200,
      -32004,
      "not_found",
      "scenario not defined",
      "1",
    ],
  ];
  for (const [what, body, status, code, kind, message, requestId] of table) {
    it(`${what} → HTTP ${status}, ${code} ${kind}`, async () => {
      const response = await rpc(body);
      expect(response.status).toBe(status);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      expect(errorOf(response.json)).toEqual({
        code: BigInt(code),
        message,
        data: { kind, retryable: false, request_id: requestId },
      });
    });
  }

  it("a bad argument names the field (-32602), a conflict is -32009, a control-plane refusal -32030", async () => {
    const missing = errorOf((await rpc(call("scenario_define", {}))).json);
    expect(missing).toMatchObject({ code: -32602n, message: "invalid arguments: arguments.spec: missing field" });
    const spec = parseJson(RELEASE_GATE) as JsonObject;
    expect((await rpc(call("scenario_define", { spec }))).json.result).toBeDefined();
    expect((await rpc(call("scenario_define", { spec }))).json.result).toBeDefined();
    const changed = { ...spec, spec_version: "v2" };
    expect(errorOf((await rpc(call("scenario_define", { spec: changed }))).json)).toMatchObject({
      code: -32009n,
      message: "scenario already defined",
    });
    const next = call("scenario_next", {
      scenario_id: "release-gate",
      request: {
        run_id: "missing",
        tenant_id: 1,
        namespace_id: 2,
        trigger_id: "t",
        agent_id: "a",
        time: { kind: "logical", value: 1 },
      },
    });
    expect(errorOf((await rpc(next)).json)).toMatchObject({ code: -32030n, message: "run not found: missing" });
  });

  it("refuses an oversized body with 413 and -32070, and keeps serving", async () => {
    const response = await rpc(call("providers_list", { padding: "x".repeat(5000) }));
    expect(response.status).toBe(413);
    expect(errorOf(response.json)).toEqual({
      code: -32070n,
      message: "request body too large",
      data: { kind: "request_too_large", retryable: false, request_id: null },
    });
    expect((await rpc(call("providers_list", {}))).status).toBe(200);
  });

  it("echoes a valid correlation id, always issues a server one, and rejects a malformed one with -32073", async () => {
    const ok = await rpc(call("providers_list", {}), { "x-correlation-id": "  req-42  " });
    expect(ok.headers.get("x-correlation-id")).toBe("req-42");
    expect(ok.headers.get("x-server-correlation-id")).toMatch(/^dg-[0-9a-f]{16}-[0-9a-f]{16}$/);
    const bad = await rpc(call("providers_list", {}), { "x-correlation-id": "has space(s)" });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("x-correlation-id")).toBeNull();
    expect(errorOf(bad.json)).toEqual({
      code: -32073n,
      message: "invalid correlation id",
      data: { kind: "invalid_correlation_id", retryable: false, request_id: null },
    });
  });

  it("answers health and readiness", async () => {
    for (const [path, status] of [
      ["/healthz", "ok"],
      ["/readyz", "ready"],
    ]) {
      const response = await fetch(`${server.url}${path}`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status });
    }
    expect((await fetch(`${server.url}/nowhere`)).status).toBe(404);
  });

  it("lists the tools in canonical order with the reference's keys, without hidden ones", async () => {
    const tools = ((await rpc('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')).json.result as JsonObject)
      .tools as JsonObject[];
    expect(tools.map((tool) => tool.name)).toEqual([
      "scenario_define",
      "scenario_start",
      "scenario_status",
      "scenario_next",
      "scenario_submit",
      "scenario_trigger",
      "evidence_query",
      "runpack_export",
      "runpack_verify",
      "providers_list",
      "provider_contract_get",
      "provider_check_schema_get",
      "schemas_register",
      "schemas_list",
      "schemas_get",
      "scenarios_list",
      "decision_gate_docs_search",
      "runtime_action_evaluate",
    ]);
    expect(Object.keys(tools[0] as JsonObject)).toEqual(["name", "description", "input_schema"]);
  });
});

describe("transport variants", () => {
  it("SSE answers /rpc with exactly one data event, keeping the status mapping", async () => {
    const sse = await startServerProcess(`[server]\ntransport = "sse"\nbind = "127.0.0.1:0"\n${BASE}`);
    try {
      const ok = await fetch(`${sse.url}/rpc`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: call("providers_list", {}),
      });
      expect(ok.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const text = await ok.text();
      expect(text).toMatch(/^data: \{.*\}\n\n$/s);
      expect((parseJson(text.slice(6)) as JsonObject).result).toBeDefined();
      const bad = await fetch(`${sse.url}/rpc`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: call("nope", {}),
      });
      expect(bad.status).toBe(400);
      expect(await bad.text()).toMatch(/^data: .*"unknown tool"/);
    } finally {
      await sse.stop();
    }
  });

  it("bearer mode challenges unauthenticated callers (401 + WWW-Authenticate) and admits the token", async () => {
    const guarded = await startServerProcess(`
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.auth]
mode = "bearer_token"
bearer_tokens = ["s3cret-token"]
allowed_tools = ["providers_list"]
${BASE}`);
    try {
      const attempts: Array<Record<string, string>> = [
        {},
        { authorization: "Bearer wrong" },
        { authorization: "Basic s3cret-token" },
      ];
      for (const headers of attempts) {
        const denied = await rpc(call("providers_list", {}), headers, guarded);
        expect(denied.status).toBe(401);
        expect(denied.headers.get("www-authenticate")).toBe('Bearer realm="decision-gate"');
        expect(errorOf(denied.json)).toMatchObject({ code: -32001n, message: "unauthenticated" });
      }
      const ok = await rpc(call("providers_list", {}), { authorization: "bearer s3cret-token" }, guarded);
      expect(ok.status).toBe(200);
      const forbidden = await rpc(
        call("scenarios_list", { tenant_id: 1, namespace_id: 2 }),
        { authorization: "Bearer s3cret-token" },
        guarded,
      );
      expect(forbidden.status).toBe(403);
      expect(errorOf(forbidden.json)).toMatchObject({ code: -32003n, message: "unauthorized" });
      expect(guarded.stderr()).not.toContain("s3cret-token");
    } finally {
      await guarded.stop();
    }
  });
});
