/**
 * Agent loop with the official MCP SDK client.
 *
 *   npm run example:agent-loop
 *
 * The agent spawns the real Decision Gate server as a child process over stdio (the SDK's StdioClientTransport;
 * the server speaks standard newline-delimited MCP to it), lists the tools, defines a three-stage scenario and
 * loops on `scenario_next`. Each hold names the unmet gate; the "agent" then does the work that produces the
 * missing evidence (it writes a JSON file the built-in `json` provider reads) and asks again, until the run
 * completes. Everything lives in a temporary directory that is removed at the end.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CLI_COMMAND, tempConfigDir } from "../shared/server.js";

const CONFIG = `
[server]
transport = "stdio"

[[providers]]
name = "json"
type = "builtin"
config = { root = "./workspace", root_id = "agent-workspace" }
`;

const TENANT = 1;
const NAMESPACE = 2;
const SCENARIO = "agent-task";
const RUN = "agent-run-1";
const MAX_STEPS = 10;

const fileCheck = (conditionId: string, file: string, jsonpath: string, expected: unknown) => ({
  condition_id: conditionId,
  query: { provider_id: "json", check_id: "path", params: { file, jsonpath } },
  comparator: "equals",
  expected,
  policy_tags: [],
});

const stage = (stageId: string, gates: Array<{ gate_id: string; condition: string }>, terminal = false) => ({
  stage_id: stageId,
  entry_packets: [],
  gates: gates.map((gate) => ({ gate_id: gate.gate_id, requirement: { Condition: gate.condition } })),
  advance_to: { kind: terminal ? "terminal" : "linear" },
  timeout: null,
  on_timeout: "fail",
});

// plan -> implement -> review: each stage's gate needs evidence the agent produces.
const spec = {
  scenario_id: SCENARIO,
  namespace_id: NAMESPACE,
  spec_version: "v1",
  default_tenant_id: null,
  policies: [],
  schemas: [],
  conditions: [
    fileCheck("plan_approved", "plan.json", "$.approved", true),
    fileCheck("tests_pass", "tests.json", "$.failed", 0),
    fileCheck("review_signed_off", "review.json", "$.verdict", "lgtm"),
  ],
  stages: [
    stage("plan", [{ gate_id: "plan_gate", condition: "plan_approved" }]),
    stage("implement", [{ gate_id: "tests_gate", condition: "tests_pass" }]),
    stage("review", [{ gate_id: "review_gate", condition: "review_signed_off" }], true),
  ],
};

/** The work the agent does when a gate holds: produce the evidence that gate needs. */
const WORK: Record<string, { file: string; content: unknown; says: string }> = {
  plan_gate: { file: "plan.json", content: { steps: ["parse", "fix", "test"], approved: true }, says: "wrote a plan" },
  tests_gate: { file: "tests.json", content: { passed: 42, failed: 0 }, says: "implemented and ran the tests" },
  review_gate: { file: "review.json", content: { verdict: "lgtm" }, says: "got a review" },
};

interface ToolOutput {
  [key: string]: unknown;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<ToolOutput> {
  const result = await client.callTool({ name, arguments: args });
  const text = (result.content as Array<{ type: string; text?: string }>)[0]?.text ?? "";
  if (result.isError === true) throw new Error(`${name} failed: ${text}`);
  return (result.structuredContent as ToolOutput | undefined) ?? (JSON.parse(text) as ToolOutput);
}

async function main(): Promise<number> {
  const dir = tempConfigDir(() => CONFIG);
  const workspace = join(dir, "workspace");
  mkdirSync(workspace);
  const transport = new StdioClientTransport({
    command: CLI_COMMAND.command,
    args: [...CLI_COMMAND.args, "serve", "--config", join(dir, "decision-gate.toml")],
    cwd: dir,
    stderr: "ignore",
  });
  const client = new Client({ name: "example-agent", version: "1.0.0" });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    console.log(`tools: ${tools.map((tool) => tool.name).join(", ")}`);

    await call(client, "scenario_define", { spec });
    const runConfig = {
      tenant_id: TENANT,
      namespace_id: NAMESPACE,
      run_id: RUN,
      scenario_id: SCENARIO,
      dispatch_targets: [{ kind: "agent", agent_id: "example-agent" }],
      policy_tags: [],
    };
    await call(client, "scenario_start", {
      scenario_id: SCENARIO,
      run_config: runConfig,
      started_at: { kind: "logical", value: 1 },
      issue_entry_packets: false,
    });
    console.log(`run started: ${RUN}`);

    for (let step = 1; step <= MAX_STEPS; step++) {
      const next = await call(client, "scenario_next", {
        scenario_id: SCENARIO,
        request: {
          run_id: RUN,
          tenant_id: TENANT,
          namespace_id: NAMESPACE,
          trigger_id: `step-${step}`,
          agent_id: "example-agent",
          time: { kind: "logical", value: step + 1 },
          correlation_id: null,
        },
        feedback: "summary",
      });
      const decision = next.decision as { stage_id: string; outcome: Record<string, unknown> };
      const outcome = decision.outcome;
      switch (outcome.kind) {
        case "hold": {
          const unmet = (outcome.summary as { unmet_gates: string[] }).unmet_gates;
          console.log(`step ${step}: decision hold at stage ${decision.stage_id} (unmet: ${unmet.join(", ")})`);
          for (const gate of unmet) {
            const work = WORK[gate];
            if (work === undefined) throw new Error(`the agent cannot satisfy gate ${gate}`);
            writeFileSync(join(workspace, work.file), JSON.stringify(work.content));
            console.log(`  agent: ${work.says} (${work.file})`);
          }
          break;
        }
        case "advance":
          console.log(`step ${step}: decision advance ${String(outcome.from_stage)} -> ${String(outcome.to_stage)}`);
          break;
        case "complete":
          console.log(`step ${step}: decision complete at stage ${String(outcome.stage_id)}`);
          console.log(`run completed after ${step} steps (status: ${String(next.status)})`);
          return 0;
        default:
          console.log(`step ${step}: decision ${String(outcome.kind)} ${JSON.stringify(outcome)}`);
          return 1;
      }
    }
    console.log(`run not completed after ${MAX_STEPS} steps`);
    return 1;
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
