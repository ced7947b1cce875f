import { describe, expect, it } from "vitest";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { compactJson } from "../../src/json/write.js";
import { RELEASE_GATE } from "../support/scenarios.js";
import { startServerProcess } from "../support/server-process.js";

describe("Prometheus metrics", () => {
  it(
    "count requests, tool latency, decisions, evidence queries, commits and active runs",
    { timeout: 30_000 },
    async () => {
      const server = await startServerProcess(
        '[server]\ntransport = "http"\nbind = "127.0.0.1:0"\n[[providers]]\nname = "time"\ntype = "builtin"\n',
      );
      try {
        const call = (name: string, args: JsonValue) =>
          fetch(`${server.url}/rpc`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: compactJson({ jsonrpc: "2.0", id: 1n, method: "tools/call", params: { name, arguments: args } }),
          });
        const run = { run_id: "r", tenant_id: 1n, namespace_id: 2n };
        await call("scenario_define", { spec: parseJson(RELEASE_GATE) });
        await call("scenario_start", {
          scenario_id: "release-gate",
          run_config: { ...run, scenario_id: "release-gate", dispatch_targets: [], policy_tags: [] },
          started_at: { kind: "logical", value: 1n },
          issue_entry_packets: true,
        });
        for (const [trigger, time] of [
          ["t-1", 3n],
          ["t-2", 10n],
          ["t-3", 11n],
        ] as const) {
          await call("scenario_next", {
            scenario_id: "release-gate",
            request: { ...run, trigger_id: trigger, agent_id: "a", time: { kind: "logical", value: time } },
          });
        }
        await call("nope", {});
        const response = await fetch(`${server.url}/metrics`);
        expect(response.headers.get("content-type")).toContain("text/plain");
        const text = await response.text();
        const value = (series: string) =>
          Number(new RegExp(`^${series.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1]);
        expect(
          value(
            'decision_gate_requests_total{dialect="dg",method="tools/call",tool="scenario_next",outcome="ok",code=""}',
          ),
        ).toBe(3);
        expect(
          value(
            // An unknown tool counts as `other`: callers must not choose label values.
            'decision_gate_requests_total{dialect="dg",method="tools/call",tool="other",outcome="error",code="-32601"}',
          ),
        ).toBe(1);
        expect(value('decision_gate_tool_duration_seconds_count{tool="scenario_next",outcome="ok"}')).toBe(3);
        for (const kind of ["start", "hold", "advance", "complete"])
          expect(value(`decision_gate_decisions_total{kind="${kind}"}`)).toBe(1);
        expect(value('decision_gate_evidence_queries_total{provider="time",outcome="ok"}')).toBe(2);
        expect(value('decision_gate_store_commit_duration_seconds_count{operation="commit",outcome="ok"}')).toBe(3);
        expect(value("decision_gate_runs_active")).toBe(0);
        expect(text).not.toMatch(/run_id|tenant/);
      } finally {
        await server.stop();
      }
    },
  );
});
