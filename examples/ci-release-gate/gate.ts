/**
 * CI release gate: a JSON test report decides whether a release may ship.
 *
 *   npm run example:ci-gate                 # report.json (0 failures): release allowed, exit 0
 *   npm run example:ci-gate:failing         # report-failing.json (3 failures): release held, exit 1
 *   npx tsx examples/ci-release-gate/gate.ts path/to/report.json
 *
 * The script starts the real server (HTTP on a free loopback port, in-memory state, config in a temp dir),
 * defines a one-stage scenario whose gate requires `$.failed == 0` from the built-in `json` provider, starts a
 * run and asks `scenario_next` once: `complete` means the gate passed, `hold` means it did not.
 */
import { existsSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { JsonObject } from "../../src/json/value.js";
import { startServer, tempConfigDir } from "../shared/server.js";

const here = dirname(fileURLToPath(import.meta.url));
const reportPath = resolve(process.argv[2] ?? `${here}/report.json`);
if (!existsSync(reportPath)) {
  console.error(`report not found: ${reportPath}`);
  process.exit(2);
}

// The json provider reads files below `root` only: the report's directory.
const config = () => `
[server]
transport = "http"
bind = "127.0.0.1:0"

[trust]
default_policy = "audit"
min_lane = "verified"

[[providers]]
name = "json"
type = "builtin"
config = { root = ${JSON.stringify(dirname(reportPath))}, root_id = "ci-reports" }
`;

const TENANT = 1n;
const NAMESPACE = 2n;
const SCENARIO = "ci-release-gate";
const RUN = `release-${Date.now()}`;

const spec = {
  scenario_id: SCENARIO,
  namespace_id: NAMESPACE,
  spec_version: "v1",
  default_tenant_id: null,
  policies: [],
  schemas: [],
  conditions: [
    {
      condition_id: "tests_green",
      query: { provider_id: "json", check_id: "path", params: { file: basename(reportPath), jsonpath: "$.failed" } },
      comparator: "equals",
      expected: 0n,
      policy_tags: [],
    },
  ],
  stages: [
    {
      stage_id: "release",
      entry_packets: [],
      gates: [{ gate_id: "no_failed_tests", requirement: { Condition: "tests_green" } }],
      advance_to: { kind: "terminal" },
      timeout: null,
      on_timeout: "fail",
    },
  ],
};

const logical = (value: number) => ({ kind: "logical", value: BigInt(value) });

async function main(): Promise<number> {
  const server = await startServer(tempConfigDir(config));
  try {
    console.log(`report: ${reportPath}`);
    await server.call("scenario_define", { spec });
    await server.call("scenario_start", {
      scenario_id: SCENARIO,
      run_config: {
        tenant_id: TENANT,
        namespace_id: NAMESPACE,
        run_id: RUN,
        scenario_id: SCENARIO,
        dispatch_targets: [],
        policy_tags: [],
      },
      started_at: logical(1),
      issue_entry_packets: false,
    });
    const next = await server.call("scenario_next", {
      scenario_id: SCENARIO,
      request: {
        run_id: RUN,
        tenant_id: TENANT,
        namespace_id: NAMESPACE,
        trigger_id: "ci-1",
        agent_id: "ci",
        time: logical(2),
        correlation_id: null,
      },
      feedback: "trace",
    });
    const decision = next.decision as JsonObject;
    const outcome = decision.outcome as JsonObject;
    console.log(`decision: ${String(outcome.kind)}`);
    const feedback = next.feedback as { gate_evaluations?: Array<{ gate_id: string; status: string }> } | null;
    for (const gate of feedback?.gate_evaluations ?? []) console.log(`gate ${gate.gate_id}: ${gate.status}`);
    if (outcome.kind === "hold") {
      const summary = outcome.summary as { unmet_gates: string[] };
      console.log(`unmet gates: ${summary.unmet_gates.join(", ")}`);
    }
    if (outcome.kind === "complete") {
      console.log("RELEASE ALLOWED");
      return 0;
    }
    console.log("RELEASE HELD");
    return 1;
  } finally {
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
