import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createMcpClient, type McpClient } from "../../src/cli/client.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject } from "../../src/json/value.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { checkingOutputs } from "../support/tool-contracts.js";

/*
 * Evidence disclosure through the real server (evidence §4): the policy decides what `evidence_query` and
 * `scenario_next` feedback show; run state and runpacks record every value unless `record_raw_values = false`.
 */

const DEPLOY_ENV = "eu-prod-7";

const config = (evidence: string, timeAllowsRaw: boolean) => `
[server]
transport = "http"
bind = "127.0.0.1:0"
[server.feedback.scenario_next]
max = "evidence"
evidence_subjects = ["loopback"]
${evidence}
[[providers]]
name = "time"
type = "builtin"
allow_raw = ${timeAllowsRaw}
[[providers]]
name = "env"
type = "builtin"
config = { overrides = { DEPLOY_ENV = "${DEPLOY_ENV}" } }
`;

const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });
const run = { run_id: "r", tenant_id: 1n, namespace_id: 2n };
const spec = {
  scenario_id: "deploy",
  namespace_id: 2n,
  spec_version: "1",
  policies: [],
  schemas: [],
  conditions: [
    {
      condition_id: "region",
      query: { provider_id: "env", check_id: "get", params: { key: "DEPLOY_ENV" } },
      comparator: "equals",
      expected: DEPLOY_ENV,
      policy_tags: [],
    },
    {
      condition_id: "started",
      query: { provider_id: "time", check_id: "after", params: { timestamp: 0n } },
      comparator: "equals",
      expected: true,
      policy_tags: [],
    },
  ],
  stages: [
    {
      stage_id: "ship",
      entry_packets: [],
      gates: [{ gate_id: "g", requirement: { And: [{ Condition: "region" }, { Condition: "started" }] } }],
      advance_to: { kind: "terminal" },
      timeout: null,
      on_timeout: "fail",
    },
  ],
};

const servers: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

type Results = Map<string, JsonObject>;

/** Decides the run once with `evidence` feedback, queries both providers and exports the runpack. */
async function decideAndExport(serverConfig: string) {
  const server = await startServerProcess(serverConfig);
  servers.push(server);
  const client: McpClient = checkingOutputs(createMcpClient({ transport: "http", endpoint: `${server.url}/rpc` }));
  try {
    await client.callTool("scenario_define", { spec });
    await client.callTool("scenario_start", {
      scenario_id: "deploy",
      run_config: { ...run, scenario_id: "deploy", dispatch_targets: [], policy_tags: [] },
      started_at: logical(1),
      issue_entry_packets: false,
    });
    const next = (await client.callTool("scenario_next", {
      scenario_id: "deploy",
      request: { ...run, trigger_id: "t", agent_id: "ci", time: logical(2) },
      feedback: "evidence",
    })) as JsonObject;
    const query = async (provider_id: string, check_id: string, params: JsonObject) =>
      (
        (await client.callTool("evidence_query", {
          query: { provider_id, check_id, params },
          context: { ...run, scenario_id: "deploy", stage_id: "ship", trigger_id: "q", trigger_time: logical(3) },
        })) as JsonObject
      ).result as JsonObject;
    const outputDir = join(server.dir, "runpack");
    await client.callTool("runpack_export", {
      scenario_id: "deploy",
      ...run,
      output_dir: outputDir,
      generated_at: logical(9),
      include_verification: true,
    });
    const feedback = next.feedback as JsonObject;
    const [gate] = feedback.gate_records as JsonObject[];
    const resultsOf = (records: JsonObject[]): Results =>
      new Map(records.map((record) => [record.condition_id as string, record.result as JsonObject]));
    const gateEvals = parseJson(readFileSync(join(outputDir, "artifacts/gate_evals.json"), "utf8")) as JsonObject[];
    return {
      status: next.status,
      feedbackLevel: feedback.level,
      feedback: resultsOf(gate?.evidence as JsonObject[]),
      queried: {
        region: await query("env", "get", { key: "DEPLOY_ENV" }),
        started: await query("time", "after", { timestamp: 0n }),
      },
      recorded: resultsOf(gateEvals[0]?.evidence as JsonObject[]),
    };
  } finally {
    await client.close();
  }
}

const json = (value: unknown) => ({ kind: "json", value });
const hashOf = (result: JsonObject | undefined) => (result?.evidence_hash as JsonObject | null)?.value;

describe("evidence disclosure under the reference's default policy", () => {
  it("withholds values from evidence_query and feedback, and records them as the reference does", async () => {
    const outcome = await decideAndExport(config("", false));
    expect(outcome.status).toBe("completed");
    expect(outcome.feedbackLevel).toBe("evidence");
    for (const id of ["region", "started"] as const) {
      expect(outcome.queried[id]).toMatchObject({ value: null, content_type: null, error: null });
      expect(hashOf(outcome.queried[id])).toMatch(/^[0-9a-f]{64}$/);
      expect(outcome.feedback.get(id)).toMatchObject({ value: null, content_type: null });
      expect(hashOf(outcome.feedback.get(id))).toBe(hashOf(outcome.recorded.get(id)));
    }
    expect(outcome.recorded.get("region")).toMatchObject({ value: json(DEPLOY_ENV), content_type: "text/plain" });
    expect(outcome.recorded.get("started")).toMatchObject({ value: json(true), content_type: "application/json" });
  });
});

describe("evidence disclosure with raw values allowed for one provider and record_raw_values = false", () => {
  it("reveals only the opted-in provider's value, and records only what it reveals", async () => {
    const outcome = await decideAndExport(
      config("[evidence]\nallow_raw_values = true\nrecord_raw_values = false", true),
    );
    expect(outcome.status).toBe("completed");
    expect(outcome.queried.started).toMatchObject({ value: json(true), content_type: "application/json" });
    expect(outcome.queried.region).toMatchObject({ value: null, content_type: null });
    expect(outcome.feedback.get("started")).toMatchObject({ value: json(true), content_type: "application/json" });
    expect(outcome.feedback.get("region")).toMatchObject({ value: null, content_type: null });
    expect(hashOf(outcome.feedback.get("region"))).toMatch(/^[0-9a-f]{64}$/);
    expect(outcome.recorded.get("started")).toMatchObject({ value: json(true) });
    expect(outcome.recorded.get("region")).toMatchObject({
      value: null,
      content_type: null,
      evidence_anchor: { anchor_type: "env", anchor_value: "DEPLOY_ENV" },
    });
    expect(hashOf(outcome.recorded.get("region"))).toMatch(/^[0-9a-f]{64}$/);
  });
});
