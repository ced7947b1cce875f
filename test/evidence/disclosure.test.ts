import { describe, expect, it } from "vitest";
import { KEEP_ALL } from "../../src/core/run/evidence.js";
import type { EvidenceRecord, EvidenceResult, GateEvalRecord } from "../../src/core/run/schema.js";
import { decode } from "../../src/core/wire/common.js";
import {
  disclosedGateRecords,
  disclosurePolicy,
  EvidenceConfig,
  recordingPolicy,
} from "../../src/evidence/disclosure.js";
import { hashCanonical } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import { specFrom } from "../support/scenarios.js";

/* The disclosure rule where it applies after recording: `scenario_next` feedback, and the opt-in recording policy. */

const evidenceConfig = (text: string) => decode(EvidenceConfig, parseJson(text), "evidence");

const spec = specFrom(`{
  "scenario_id": "s", "namespace_id": 2, "spec_version": "1", "policies": [], "schemas": [],
  "conditions": [
    {"condition_id": "open", "query": {"provider_id": "shown", "check_id": "c"}, "comparator": "exists", "policy_tags": []},
    {"condition_id": "secret", "query": {"provider_id": "hidden", "check_id": "c"}, "comparator": "exists", "policy_tags": []},
    {"condition_id": "late", "query": {"provider_id": "shown", "check_id": "c"}, "comparator": "exists", "policy_tags": []}
  ],
  "stages": [{"stage_id": "a", "entry_packets": [], "gates": [], "advance_to": {"kind": "terminal"}, "timeout": null,
    "on_timeout": "fail"}]
}`);

function answered(value: string): EvidenceResult {
  return {
    value: { kind: "json", value },
    lane: "verified",
    error: null,
    evidence_hash: hashCanonical(value),
    evidence_ref: { uri: `ref:${value}` },
    evidence_anchor: { anchor_type: "a", anchor_value: value },
    signature: null,
    content_type: "application/json",
  };
}

const record = (conditionId: string, result: EvidenceResult): EvidenceRecord => ({
  condition_id: conditionId,
  status: result.error === null ? "True" : "Unknown",
  result,
});

/** One gate's records: a revealed provider, a withheld one, a trust-lane failure and a condition not in the spec. */
const recorded: GateEvalRecord[] = [
  {
    trigger_id: "t",
    stage_id: "a",
    evaluation: { gate_id: "g", status: "Unknown", trace: [] },
    evidence: [
      record("open", answered("visible")),
      record("secret", answered("confidential")),
      record("late", {
        ...answered("below-lane"),
        lane: "asserted",
        error: { code: "trust_lane", message: "evidence lane Asserted does not satisfy Verified", details: null },
      }),
      record("unknown", answered("stray")),
    ],
  },
];

describe("feedback gate_records", () => {
  const disclosure = disclosurePolicy(evidenceConfig('{"allow_raw_values":true}'), ["shown"]);
  const [gate] = disclosedGateRecords(spec, recorded, disclosure);
  const shown = new Map(gate?.evidence.map((entry) => [entry.condition_id, entry.result]));

  it("keep the value of a condition whose provider may reveal it", () => {
    expect(shown.get("open")).toEqual(answered("visible"));
  });

  it("withhold value and content type per provider, keeping hash, anchor and reference", () => {
    expect(shown.get("secret")).toEqual({ ...answered("confidential"), value: null, content_type: null });
  });

  it("strip value, content type and hash from failed results, even of a revealed provider", () => {
    expect(shown.get("late")).toMatchObject({
      value: null,
      content_type: null,
      evidence_hash: null,
      evidence_anchor: { anchor_type: "a", anchor_value: "below-lane" },
      error: { code: "trust_lane" },
    });
  });

  it("withhold the value of a condition the spec does not name", () => {
    expect(shown.get("unknown")?.value).toBeNull();
  });

  it("leave the recorded records untouched", () => {
    expect(recorded[0]?.evidence[1]?.result.value).toEqual({ kind: "json", value: "confidential" });
  });

  it("withhold everything under the default policy", () => {
    const defaults = disclosurePolicy(evidenceConfig("{}"), ["shown"]);
    const values = disclosedGateRecords(spec, recorded, defaults)[0]?.evidence.map((entry) => entry.result.value);
    expect(values).toEqual([null, null, null, null]);
  });
});

describe("the recording policy", () => {
  const disclosure = disclosurePolicy(evidenceConfig("{}"), []);

  it("records every value by default, whatever the disclosure policy", () => {
    const config = evidenceConfig("{}");
    expect(config.record_raw_values).toBe(true);
    expect(recordingPolicy(config, disclosure)).toBe(KEEP_ALL);
  });

  it("records under the disclosure policy with record_raw_values = false", () => {
    expect(recordingPolicy(evidenceConfig('{"record_raw_values":false}'), disclosure)).toBe(disclosure);
  });

  it("rejects a non-boolean setting, naming the key", () => {
    expect(() => evidenceConfig('{"record_raw_values":"no"}')).toThrow(/record_raw_values/);
  });
});
