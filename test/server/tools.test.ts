import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMcpClient, type McpClient, type McpClientOptions } from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { CLI_COMMAND, configDir, type ServerProcess, startServerProcess } from "../support/server-process.js";
import { checkingOutputs } from "../support/tool-contracts.js";

const config = (transport: string) => `
[server]
transport = "${transport}"
${transport === "stdio" ? "" : 'bind = "127.0.0.1:0"'}

[namespace]
allow_default = true
default_tenants = [1]

[schema_registry]
type = "sqlite"
path = "registry.db"
[schema_registry.acl]
allow_local_only = true

[run_state_store]
type = "sqlite"
path = "runs.db"

[[providers]]
name = "time"
type = "builtin"
`;

const cleanup: string[] = [];
const servers: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

const transports: Array<[string, () => Promise<McpClientOptions>]> = [
  [
    "/rpc",
    async () => {
      const server = await startServerProcess(config("http"));
      servers.push(server);
      return { transport: "http", endpoint: `${server.url}/rpc` };
    },
  ],
  [
    "SSE",
    async () => {
      const server = await startServerProcess(config("sse"));
      servers.push(server);
      return { transport: "sse", endpoint: `${server.url}/rpc` };
    },
  ],
  [
    "stdio",
    async () => {
      const dir = configDir(config("stdio"));
      cleanup.push(dir);
      const args = [...CLI_COMMAND.args, "serve", "--config", join(dir, "decision-gate.toml")];
      return { transport: "stdio", stdioCommand: CLI_COMMAND.command, stdioArgs: args, timeoutMs: 20_000 };
    },
  ],
];

const json = (text: string) => parseJson(text) as JsonObject;
const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });
const spec = json(RELEASE_GATE);
const runRequest = { run_id: "run-1", tenant_id: 1n, namespace_id: 2n };

/**
 * Calls a tool that must fail and returns the JSON-RPC error's code and message. Over HTTP, errors with a 4xx
 * status reach the client as transport errors carrying the response body, as with the reference's clients.
 */
async function failure(client: McpClient, tool: string, args: JsonValue) {
  const error = await client.callTool(tool, args).then(
    () => {
      throw new Error(`${tool} unexpectedly succeeded`);
    },
    (caught: { code?: bigint; message: string }) => caught,
  );
  const body = /^mcp transport error: http status 4\d\d: (?:data: )?(\{.*\})\s*$/s.exec(error.message)?.[1];
  if (body !== undefined) {
    const { code, message } = (parseJson(body) as { error: { code: bigint; message: string } }).error;
    return { code, message };
  }
  return { code: error.code, message: error.message.replace(/^mcp protocol error: /, "") };
}

describe.each(transports)("every tool over %s", (_name, options) => {
  let client: McpClient;
  const outputDir = mkdtempSync(join(tmpdir(), "dg-tools-runpack-"));
  cleanup.push(outputDir);

  it("discovers providers and their contracts", { timeout: 60_000 }, async () => {
    // Every successful output below is also checked against the reference's output schema for its tool.
    client = checkingOutputs(createMcpClient(await options()));
    expect(await client.callTool("providers_list", {})).toEqual({
      providers: [{ provider_id: "time", transport: "builtin", checks: ["after", "before", "now"] }],
    });
    const contract = (await client.callTool("provider_contract_get", { provider_id: "time" })) as JsonObject;
    expect(contract).toMatchObject({ provider_id: "time", source: "builtin", version: null });
    expect((contract.contract_hash as JsonObject).algorithm).toBe("sha256");
    expect(await failure(client, "provider_contract_get", { provider_id: "nope" })).toEqual({
      code: -32602n,
      message: "provider_missing: provider not registered: nope",
    });
    const check = (await client.callTool("provider_check_schema_get", {
      provider_id: "time",
      check_id: "after",
    })) as JsonObject;
    expect(check).toMatchObject({ provider_id: "time", check_id: "after", params_required: true });
    expect(await failure(client, "provider_check_schema_get", { provider_id: "time", check_id: "later" })).toEqual({
      code: -32602n,
      message: "check_missing: check not supported: time.later",
    });
  });

  it("defines, lists, starts, advances, submits, triggers and reports a run", async () => {
    expect(await client.callTool("scenario_define", { spec })).toEqual({
      scenario_id: "release-gate",
      spec_hash: { algorithm: "sha256", value: "17d00618805e73a7d76690d4ad317bf74d6035ed61faf3fdadc4f6eda65bbce7" },
    });
    const invalid = {
      ...spec,
      scenario_id: "broken",
      stages: [...(spec.stages as JsonValue[]), (spec.stages as JsonValue[])[0] as JsonValue],
    };
    const refused = await failure(client, "scenario_define", { spec: invalid });
    expect(refused.code).toBe(-32030n);
    expect(refused.message).toMatch(/^invalid scenario spec: duplicate stage identifier: review; /);
    expect(await client.callTool("scenarios_list", { tenant_id: 1n, namespace_id: 2n })).toMatchObject({
      items: [{ scenario_id: "release-gate", namespace_id: 2n }],
      next_token: "release-gate",
    });
    expect(await failure(client, "scenarios_list", { tenant_id: 1n, namespace_id: 2n, limit: 0n })).toEqual({
      code: -32602n,
      message: "limit must be between 1 and 1000",
    });

    const runConfig = {
      ...runRequest,
      scenario_id: "release-gate",
      dispatch_targets: [{ kind: "agent", agent_id: "a" }],
      policy_tags: [],
    };
    const started = (await client.callTool("scenario_start", {
      scenario_id: "release-gate",
      run_config: runConfig,
      started_at: logical(1),
      issue_entry_packets: true,
    })) as JsonObject;
    expect(started).toMatchObject({ current_stage_id: "review", status: "active" });
    expect(
      await failure(client, "scenario_start", {
        scenario_id: "nope",
        run_config: runConfig,
        started_at: logical(1),
        issue_entry_packets: false,
      }),
    ).toEqual({
      code: -32004n,
      message: "scenario not defined",
    });

    const next = (trigger: string, time: number, feedback?: string) =>
      client.callTool("scenario_next", {
        scenario_id: "release-gate",
        request: { ...runRequest, trigger_id: trigger, agent_id: "agent-1", time: logical(time) },
        ...(feedback === undefined ? {} : { feedback }),
      }) as Promise<JsonObject>;
    const held = await next("t-1", 3, "trace");
    expect((held.decision as JsonObject).outcome).toMatchObject({ kind: "hold" });
    expect(held.feedback).toEqual({
      level: "trace",
      gate_evaluations: [
        { gate_id: "window_gate", status: "False", trace: [{ condition_id: "after_window", status: "False" }] },
      ],
    });
    expect(
      await failure(client, "scenario_next", {
        scenario_id: "release-gate",
        request: { ...runRequest, trigger_id: "t-1", agent_id: "agent-1", time: logical(4) },
      }),
    ).toEqual({
      code: -32009n,
      message: "trigger_id conflict: t-1",
    });

    const submission = {
      ...runRequest,
      submission_id: "s-1",
      payload: { kind: "json", value: { a: 1n } },
      content_type: "application/json",
      submitted_at: logical(5),
    };
    expect(
      await client.callTool("scenario_submit", { scenario_id: "release-gate", request: submission }),
    ).toMatchObject({
      record: { submission_id: "s-1" },
    });
    expect(
      await failure(client, "scenario_submit", {
        scenario_id: "release-gate",
        request: { ...submission, payload: { kind: "json", value: { a: 2n } } },
      }),
    ).toEqual({
      code: -32009n,
      message: "submission_id conflict: s-1",
    });

    const triggered = (await client.callTool("scenario_trigger", {
      scenario_id: "release-gate",
      trigger: { ...runRequest, trigger_id: "tick-1", kind: "tick", time: logical(200), source_id: "scheduler" },
    })) as JsonObject;
    expect((triggered.decision as JsonObject).outcome).toEqual({ kind: "fail", reason: "timeout" });
    expect(triggered.status).toBe("failed");

    expect(
      await client.callTool("scenario_status", {
        scenario_id: "release-gate",
        request: { ...runRequest, requested_at: logical(300) },
      }),
    ).toMatchObject({ status: "failed", current_stage_id: "review", issued_packet_ids: ["brief"] });
  });

  it("queries evidence directly, withholding the value by default", async () => {
    const context = {
      ...runRequest,
      scenario_id: "release-gate",
      stage_id: "review",
      trigger_id: "q",
      trigger_time: logical(7),
    };
    expect(
      await client.callTool("evidence_query", { query: { provider_id: "time", check_id: "now" }, context }),
    ).toMatchObject({
      result: { value: null, error: null, evidence_anchor: { anchor_type: "trigger_time_logical", anchor_value: "7" } },
    });
    expect(
      await failure(client, "evidence_query", { query: { provider_id: "nope", check_id: "x" }, context }),
    ).toMatchObject({
      code: -32602n,
    });
  });

  it("registers, lists and reads data shapes, and prechecks against one", async () => {
    const record = {
      tenant_id: 1n,
      namespace_id: 2n,
      schema_id: "window",
      version: "1",
      schema: { type: "object", properties: { after_window: { type: "boolean" } } },
      description: null,
      created_at: logical(1),
    };
    expect(await client.callTool("schemas_register", { record })).toMatchObject({ record: { schema_id: "window" } });
    expect(await failure(client, "schemas_register", { record })).toEqual({
      code: -32009n,
      message: "schema already registered",
    });
    expect(await client.callTool("schemas_list", { tenant_id: 1n, namespace_id: 2n })).toMatchObject({
      items: [{ schema_id: "window", version: "1" }],
    });
    expect(
      await client.callTool("schemas_get", { tenant_id: 1n, namespace_id: 2n, schema_id: "window", version: "1" }),
    ).toMatchObject({
      record: { schema_id: "window" },
    });
    expect(
      await failure(client, "schemas_get", { tenant_id: 1n, namespace_id: 2n, schema_id: "window", version: "2" }),
    ).toEqual({
      code: -32004n,
      message: "schema not found",
    });
    const prechecked = (await client.callTool("precheck", {
      tenant_id: 1n,
      namespace_id: 2n,
      scenario_id: "release-gate",
      data_shape: { schema_id: "window", version: "1" },
      payload: { after_window: true },
    })) as JsonObject;
    // Asserted evidence does not satisfy the default `verified` minimum lane: the gate holds.
    expect(prechecked.decision).toMatchObject({ kind: "hold", summary: { unmet_gates: ["window_gate"] } });
    expect(
      await failure(client, "precheck", {
        tenant_id: 1n,
        namespace_id: 2n,
        scenario_id: "release-gate",
        data_shape: { schema_id: "window", version: "1" },
        payload: { after_window: "yes" },
      }),
    ).toMatchObject({
      code: -32602n,
    });
  });

  it("exports and verifies a runpack, and searches and reads the docs", async () => {
    const exported = (await client.callTool("runpack_export", {
      scenario_id: "release-gate",
      ...runRequest,
      output_dir: outputDir,
      generated_at: logical(400),
      include_verification: true,
    })) as JsonObject;
    expect(exported.report).toMatchObject({ status: "pass" });
    expect(
      await client.callTool("runpack_verify", { runpack_dir: outputDir, manifest_path: "manifest.json" }),
    ).toMatchObject({
      status: "pass",
    });
    expect(
      await failure(client, "runpack_export", {
        scenario_id: "release-gate",
        ...runRequest,
        run_id: "none",
        output_dir: outputDir,
        generated_at: logical(1),
        include_verification: false,
      }),
    ).toEqual({
      code: -32004n,
      message: "run not found",
    });
    const search = (await client.callTool("decision_gate_docs_search", {
      query: "runpack verification",
    })) as JsonObject;
    expect((search.sections as JsonValue[]).length).toBeGreaterThan(0);
    const resources = (await client.listResources()) as { resources: Array<{ uri: string }> };
    const first = resources.resources[0]?.uri ?? "";
    expect(first).toMatch(/^decision-gate:\/\/docs\//);
    expect(await client.readResource(first)).toMatchObject({ contents: [{ uri: first, mimeType: "text/markdown" }] });
    await client.close();
  });
});
