import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMcpClient, type McpClient } from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { referenceOutputProblem } from "../support/tool-contracts.js";

const SECRET = "planted-s3cret-in-env-4242";
const PAYLOAD_SECRET = "planted-payload-secret-5151";

const CONFIG = `
[server]
transport = "http"
bind = "127.0.0.1:0"

[runtime_actions]
receipt_log = "logs/receipts.jsonl"
include_in_runpack = true

[trust]
min_lane = "verified"

[[providers]]
name = "time"
type = "builtin"

[[providers]]
name = "env"
type = "builtin"
trust = { require_signature = { keys = ["keys/none.pub"] } }
config = { overrides = { DEPLOY_KEY = "${SECRET}" } }
`;

let server: ServerProcess;
beforeAll(async () => {
  server = await startServerProcess(CONFIG, [], (dir) => {
    mkdirSync(join(dir, "keys"));
    writeFileSync(join(dir, "keys/none.pub"), Buffer.alloc(32, 9).toString("base64"));
  });
});
afterAll(async () => {
  await server?.stop();
});

const spec = parseJson(RELEASE_GATE) as JsonObject;
/** A second scenario whose only condition needs a signed env answer: the unsigned answer is an integrity failure. */
const signedSpec = parseJson(
  RELEASE_GATE.replace('"release-gate"', '"signed-gate"')
    .replace(
      '{"provider_id": "time", "check_id": "after", "params": {"timestamp": 5}}',
      '{"provider_id": "env", "check_id": "get", "params": {"key": "DEPLOY_KEY"}}',
    )
    .replace('"comparator": "equals", "expected": true', '"comparator": "exists"'),
) as JsonObject;

const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });

async function flow(client: McpClient, runId: string) {
  const run = { run_id: runId, tenant_id: 1n, namespace_id: 2n };
  const next = async (trigger: string, time: number) =>
    (await client.callTool("scenario_next", {
      scenario_id: "release-gate",
      request: { ...run, trigger_id: trigger, agent_id: "agent", time: logical(time) },
    })) as JsonObject;
  await client.callTool("scenario_start", {
    scenario_id: "release-gate",
    run_config: { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
    started_at: logical(1),
    issue_entry_packets: true,
  });
  await client.callTool("scenario_submit", {
    scenario_id: "release-gate",
    request: {
      ...run,
      submission_id: "s",
      payload: { kind: "json", value: { note: PAYLOAD_SECRET } },
      content_type: "application/json",
      submitted_at: logical(2),
    },
  });
  return { run, next };
}

const actionOf = (result: JsonObject) => result.action as JsonObject;

describe.each([
  ["/rpc", "http", "/rpc"],
  ["/mcp", "mcp-http", "/mcp"],
] as const)("runtime actions over %s", (_name, transport, path) => {
  let client: McpClient;

  it("maps hold, advance, complete and a timeout failure to their actions, chaining the receipts", async () => {
    client = createMcpClient({ transport, endpoint: `${server.url}${path}` });
    await client.callTool("scenario_define", { spec });
    const { run, next } = await flow(client, `run-${transport}`);
    const held = actionOf(await next("t-1", 3));
    expect(held).toMatchObject({
      runtime_decision: "warn",
      action: "isolate_and_continue",
      decision_kind: "hold",
      capabilities: {
        allowed: ["public_metadata_verification"],
        isolated: ["private_runner", "unsafe_payload_fetch", "secret_material_access"],
      },
    });
    const advanced = actionOf(await next("t-2", 10));
    expect(advanced).toMatchObject({
      runtime_decision: "allow",
      action: "continue",
      previous_hash: held.receipt_sha256,
    });
    expect((advanced.capabilities as JsonObject).isolated).toEqual([]);
    const completed = actionOf(await next("t-3", 11));
    expect(completed).toMatchObject({
      action: "continue",
      decision_kind: "complete",
      previous_hash: advanced.receipt_sha256,
    });
    expect(actionOf(await next("t-3", 11))).toEqual(completed);
    const status = (await client.callTool("scenario_status", {
      scenario_id: "release-gate",
      request: { ...run, requested_at: logical(20) },
    })) as JsonObject;
    // Receipts come with `scenario_next` / `scenario_trigger` only (spec §6): the status keeps the reference's shape.
    expect(status.action).toBeUndefined();
    expect(referenceOutputProblem("scenario_status", status)).toBeUndefined();

    const failing = { ...run, run_id: `${run.run_id}-timeout` };
    await client.callTool("scenario_start", {
      scenario_id: "release-gate",
      run_config: { ...failing, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
      started_at: logical(1),
      issue_entry_packets: false,
    });
    const timedOut = (await client.callTool("scenario_trigger", {
      scenario_id: "release-gate",
      trigger: { ...failing, trigger_id: "tick", kind: "tick", time: logical(500), source_id: "scheduler" },
    })) as JsonObject;
    expect(actionOf(timedOut)).toMatchObject({
      runtime_decision: "block",
      action: "terminate",
      reasons: ["decision fail: timeout"],
      capabilities: { allowed: [] },
    });
  });

  it("terminates when a hold comes from evidence that failed an integrity check", async () => {
    await client.callTool("scenario_define", { spec: signedSpec });
    const run = { run_id: `signed-${transport}`, tenant_id: 1n, namespace_id: 2n };
    await client.callTool("scenario_start", {
      scenario_id: "signed-gate",
      run_config: { ...run, scenario_id: "signed-gate", dispatch_targets: [], policy_tags: [] },
      started_at: logical(1),
      issue_entry_packets: false,
    });
    const result = (await client.callTool("scenario_next", {
      scenario_id: "signed-gate",
      request: { ...run, trigger_id: "t", agent_id: "agent", time: logical(2) },
    })) as JsonObject;
    expect(actionOf(result)).toMatchObject({ decision_kind: "hold", runtime_decision: "block", action: "terminate" });
  });

  it("exports the receipts with the runpack, where their chain verifies, and detects a tampered chain", async () => {
    const output = join(server.dir, `runpack-${transport}`);
    await client.callTool("runpack_export", {
      scenario_id: "release-gate",
      run_id: `run-${transport}`,
      tenant_id: 1n,
      namespace_id: 2n,
      output_dir: output,
      generated_at: logical(30),
      include_verification: true,
    });
    const receipts = parseJson(readFileSync(join(output, "artifacts/action_receipts.json"), "utf8")) as JsonObject[];
    expect(receipts.map((receipt) => receipt.decision_kind)).toEqual(["start", "hold", "advance", "complete"]);
    const verify = () => client.callTool("runpack_verify", { runpack_dir: output, manifest_path: "manifest.json" });
    expect(await verify()).toMatchObject({ status: "pass" });

    const tampered = receipts.map((receipt, i) =>
      i === 1 ? { ...receipt, action: "continue" } : receipt,
    ) as JsonValue;
    writeFileSync(join(output, "artifacts/action_receipts.json"), compactJson(tampered));
    const report = ((await verify()) as JsonObject).report as JsonObject;
    expect(report.errors).toEqual(
      expect.arrayContaining([
        "hash mismatch for artifacts/action_receipts.json",
        "action receipt 2: receipt_sha256 mismatch",
      ]),
    );
    await client.close();
  });
});

describe("receipts are metadata only", () => {
  it("no receipt, returned or logged, carries evidence values, payloads or configured secrets", () => {
    const log = readFileSync(join(server.dir, "logs/receipts.jsonl"), "utf8");
    const lines = log.trim().split("\n");
    expect(lines.length).toBeGreaterThan(8);
    for (const secret of [SECRET, PAYLOAD_SECRET, "none.pub"]) expect(log).not.toContain(secret);
    for (const line of lines) {
      expect(Object.keys(JSON.parse(line)).sort()).toEqual([
        "action",
        "canonicalization",
        "capabilities",
        "decision_hash",
        "decision_id",
        "decision_kind",
        "decision_seq",
        "namespace_id",
        "previous_hash",
        "reasons",
        "receipt_sha256",
        "receipt_version",
        "run_id",
        "runtime_decision",
        "scenario_id",
        "stage_id",
        "tenant_id",
        "trigger_id",
      ]);
    }
    expect(server.stderr()).not.toContain(SECRET);
  });
});
