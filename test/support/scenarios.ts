import { ControlPlane, type ControlPlaneOptions } from "../../src/core/run/control-plane.js";
import type { NextRequest } from "../../src/core/run/requests.js";
import type { RunConfig, TriggerEvent } from "../../src/core/run/schema.js";
import { ScenarioSpec } from "../../src/core/spec/schema.js";
import { decode } from "../../src/core/wire/common.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { TimeEvidence } from "./time-evidence.js";

/** Decodes wire JSON text (parsed losslessly) into a scenario spec. */
export function specFrom(json: string): ScenarioSpec {
  return decode(ScenarioSpec, parseJson(json), "spec");
}

/** The two-stage release gate of the reference's worked example (engine §A). */
export const RELEASE_GATE = `{
  "scenario_id": "release-gate", "namespace_id": 2, "spec_version": "v1",
  "default_tenant_id": null, "policies": [], "schemas": [],
  "conditions": [
    {"condition_id": "after_window",
     "query": {"provider_id": "time", "check_id": "after", "params": {"timestamp": 5}},
     "comparator": "equals", "expected": true, "policy_tags": []}
  ],
  "stages": [
    {"stage_id": "review",
     "entry_packets": [{"packet_id": "brief", "schema_id": "brief-v1", "content_type": "application/json",
                        "visibility_labels": ["internal"], "policy_tags": [], "expiry": null,
                        "payload": {"kind": "json", "value": {"msg": "hello"}}}],
     "gates": [{"gate_id": "window_gate", "requirement": {"And": [{"Condition": "after_window"}]}}],
     "advance_to": {"kind": "linear"},
     "timeout": {"timeout_ms": 100, "policy_tags": []}, "on_timeout": "fail"},
    {"stage_id": "ship",
     "entry_packets": [{"packet_id": "ship_notice", "schema_id": "notice-v1", "content_type": "application/json",
                        "visibility_labels": ["internal"], "policy_tags": [], "expiry": null,
                        "payload": {"kind": "json", "value": {"ship": true}}}],
     "gates": [], "advance_to": {"kind": "terminal"}, "timeout": null, "on_timeout": "fail"}
  ]
}`;

/** Scenario `deploy`: one stage whose gate needs the `env` provider's `DEPLOY_KEY` to exist (wire JSON). */
export const ENV_KEY_GATE = {
  scenario_id: "deploy",
  namespace_id: 2n,
  spec_version: "1",
  policies: [],
  schemas: [],
  conditions: [
    {
      condition_id: "key_set",
      query: { provider_id: "env", check_id: "get", params: { key: "DEPLOY_KEY" } },
      comparator: "exists",
      policy_tags: [],
    },
  ],
  stages: [
    {
      stage_id: "ship",
      entry_packets: [],
      gates: [{ gate_id: "g", requirement: { Condition: "key_set" } }],
      advance_to: { kind: "terminal" },
      timeout: null,
      on_timeout: "fail",
    },
  ],
} satisfies JsonValue;

export const logical = (value: number) => ({ kind: "logical" as const, value: BigInt(value) });

export function runConfig(overrides: Partial<RunConfig> = {}): RunConfig {
  return {
    tenant_id: 1n,
    namespace_id: 2n,
    run_id: "run-1",
    scenario_id: "release-gate",
    dispatch_targets: [{ kind: "agent", agent_id: "agent-1" }],
    policy_tags: [],
    ...overrides,
  };
}

export function nextRequest(triggerId: string, time: number, overrides: Partial<NextRequest> = {}): NextRequest {
  return {
    run_id: "run-1",
    tenant_id: 1n,
    namespace_id: 2n,
    trigger_id: triggerId,
    agent_id: "agent-1",
    time: logical(time),
    correlation_id: null,
    ...overrides,
  };
}

export function tick(
  triggerId: string,
  time: TriggerEvent["time"],
  overrides: Partial<TriggerEvent> = {},
): TriggerEvent {
  return {
    trigger_id: triggerId,
    tenant_id: 1n,
    namespace_id: 2n,
    run_id: "run-1",
    kind: "tick",
    time,
    source_id: "scheduler",
    payload: null,
    correlation_id: null,
    ...overrides,
  };
}

export interface Harness {
  plane: ControlPlane;
  store: MemoryRunStateStore;
  evidence: TimeEvidence;
}

export function harness(specJson: string = RELEASE_GATE, options: Partial<ControlPlaneOptions> = {}): Harness {
  const store = new MemoryRunStateStore();
  const evidence = new TimeEvidence();
  const plane = new ControlPlane(specFrom(specJson), { store, evidence, ...options });
  return { plane, store, evidence };
}
