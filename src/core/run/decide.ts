import { I64_MAX, U64_MAX } from "../../json/value.js";
import { ControlPlaneError } from "../errors.js";
import type { GateOutcome, ScenarioSpec, StageSpec } from "../spec/schema.js";
import type { Timestamp, TriState } from "../wire/common.js";
import type { DecisionOutcome, TriggerEvent } from "./schema.js";

/** The outcome of a gate pass before packets are issued: move to a stage, or finish the run. */
export type Transition = { kind: "advance"; to: StageSpec } | { kind: "complete" };

const OUTCOME_OF: Record<TriState, GateOutcome> = { True: "true", False: "false", Unknown: "unknown" };

/**
 * Resolves where a stage whose gates passed leads (engine §4.6). `gateStatus` gives each gate's status; a
 * branch rule naming a gate that is not in the stage sees Unknown.
 */
export function resolveTransition(
  spec: ScenarioSpec,
  stage: StageSpec,
  gateStatus: (gateId: string) => TriState,
): Transition {
  const advance = stage.advance_to;
  switch (advance.kind) {
    case "terminal":
      return { kind: "complete" };
    case "linear": {
      const next = spec.stages[spec.stages.indexOf(stage) + 1];
      return next === undefined ? { kind: "complete" } : { kind: "advance", to: next };
    }
    case "fixed":
      return { kind: "advance", to: stageById(spec, advance.stage_id) };
    case "branch": {
      const rule = advance.branches.find((branch) => OUTCOME_OF[gateStatus(branch.gate_id)] === branch.outcome);
      const target = rule?.next_stage_id ?? advance.default;
      if (target === null)
        throw new ControlPlaneError("branch_unresolved", "gate resolution failed: no branch matched");
      return { kind: "advance", to: stageById(spec, target) };
    }
  }
}

export function stageById(spec: ScenarioSpec, stageId: string): StageSpec {
  const stage = spec.stages.find((candidate) => candidate.stage_id === stageId);
  if (stage === undefined) throw new ControlPlaneError("stage_not_found", `stage not found: ${stageId}`);
  return stage;
}

/** Whether a `tick` trigger finds the stage's deadline passed (engine §4.7). Other triggers never time out. */
export function timeoutFired(stage: StageSpec, enteredAt: Timestamp, trigger: TriggerEvent): boolean {
  if (trigger.kind !== "tick" || stage.timeout === null) return false;
  if (trigger.time.kind !== enteredAt.kind) {
    throw new ControlPlaneError(
      "time_kind_mismatch",
      "trigger time kind mismatch: timeout evaluation requires matching timestamp kinds",
    );
  }
  const max = enteredAt.kind === "unix_millis" ? I64_MAX : U64_MAX;
  const timeoutMs = stage.timeout.timeout_ms;
  if (timeoutMs > max) throw timeoutError("timeout exceeds timestamp range");
  const deadline = enteredAt.value + timeoutMs;
  if (deadline > max) throw timeoutError("deadline overflows timestamp range");
  return trigger.time.value >= deadline;
}

function timeoutError(reason: string): ControlPlaneError {
  return new ControlPlaneError("timeout_calculation", `timeout calculation error: ${reason}`);
}

/** The outcome of a stage whose gates are not all True. */
export function holdOutcome(unmetGateIds: string[]): DecisionOutcome {
  return {
    kind: "hold",
    summary: { status: "hold", unmet_gates: unmetGateIds, retry_hint: "await_evidence", policy_tags: [] },
  };
}

/** The outcome of a resolved transition out of `stage`. */
export function transitionOutcome(stage: StageSpec, transition: Transition, timeout: boolean): DecisionOutcome {
  if (transition.kind === "complete") return { kind: "complete", stage_id: stage.stage_id };
  return { kind: "advance", from_stage: stage.stage_id, to_stage: transition.to.stage_id, timeout };
}
