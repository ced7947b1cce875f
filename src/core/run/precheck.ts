import type { JsonValue } from "../../json/value.js";
import { evaluateComparator } from "../compare/comparator.js";
import { ControlPlaneError } from "../errors.js";
import type { ScenarioSpec } from "../spec/schema.js";
import { holdOutcome, resolveTransition, stageById, transitionOutcome } from "./decide.js";
import { evaluateGates, normalizeResult, stageConditionIds, type TrustPolicy } from "./evidence.js";
import type { DecisionOutcome, EvidenceRecord, EvidenceResult, GateEvaluation } from "./schema.js";

export interface PrecheckResult {
  decision: DecisionOutcome;
  gate_evaluations: GateEvaluation[];
}

/**
 * What a stage would decide on asserted evidence (engine §4.11): nothing is queried, recorded or issued.
 * Conditions without an assertion get an empty asserted answer. Trust rules apply as for real evidence, so
 * with a `verified` minimum every asserted condition is Unknown.
 */
export function precheckStage(
  spec: ScenarioSpec,
  stageId: string | null,
  assertions: ReadonlyMap<string, JsonValue>,
  trust: TrustPolicy,
): PrecheckResult {
  const stage = stageId === null ? spec.stages[0] : stageById(spec, stageId);
  if (stage === undefined) throw new ControlPlaneError("stage_not_found", "scenario has no stages");
  const conditions = new Map(spec.conditions.map((condition) => [condition.condition_id, condition]));
  const records = new Map<string, EvidenceRecord>();
  for (const conditionId of stageConditionIds(stage)) {
    const condition = conditions.get(conditionId);
    if (condition === undefined) continue;
    const result = normalizeResult(assertedResult(assertions.get(conditionId)));
    const expected = condition.expected === null ? undefined : condition.expected;
    const status = evaluateComparator(condition.comparator, expected, result.value);
    records.set(conditionId, { condition_id: conditionId, status, result });
  }
  const gateEvaluations = evaluateGates(spec, stage, records, trust, "precheck").map((record) => record.evaluation);
  const statuses = new Map(gateEvaluations.map((evaluation) => [evaluation.gate_id, evaluation.status]));
  const unmet = gateEvaluations.filter((evaluation) => evaluation.status !== "True").map((e) => e.gate_id);
  const decision =
    unmet.length > 0
      ? holdOutcome(unmet)
      : transitionOutcome(
          stage,
          resolveTransition(spec, stage, (id) => statuses.get(id) ?? "Unknown"),
          false,
        );
  return { decision, gate_evaluations: gateEvaluations };
}

function assertedResult(value: JsonValue | undefined): EvidenceResult {
  return {
    value: value === undefined ? null : { kind: "json", value },
    lane: "asserted",
    error: null,
    evidence_hash: null,
    evidence_ref: null,
    evidence_anchor: null,
    signature: null,
    content_type: value === undefined ? null : "application/json",
  };
}
