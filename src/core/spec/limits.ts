/**
 * Count and size limits enforced on a scenario spec at definition time (README §5 D5).
 *
 * The reference has no such limits (engine §6: only the request body size bounds a spec). These values are far
 * beyond anything a real scenario needs, yet small enough that one spec cannot make validation, hashing,
 * evaluation or storage expensive. Every limit is inclusive: a value exactly at the limit passes.
 */
export interface SpecLimits {
  /** Entries of `stages`. */
  readonly maxStages: number;
  /** Entries of `gates` in one stage. */
  readonly maxGatesPerStage: number;
  /** Entries of `entry_packets` in one stage. */
  readonly maxEntryPacketsPerStage: number;
  /** Entries of `advance_to.branches` in one stage. */
  readonly maxBranchRulesPerStage: number;
  /** Entries of `conditions`. */
  readonly maxConditions: number;
  /** Entries of `policies`. */
  readonly maxPolicies: number;
  /** Entries of `schemas`. */
  readonly maxSchemas: number;
  /** Nodes (leaves included) of one gate's requirement tree. */
  readonly maxRequirementNodes: number;
  /**
   * Deepest allowed requirement node, counting the root as depth 0 and every node's depth as its number of
   * ancestors. Equal to the evaluator's `MAX_EVAL_DEPTH` (engine §2.2), so no accepted tree can evaluate to
   * Unknown merely because of its depth.
   */
  readonly maxRequirementDepth: number;
  /**
   * UTF-8 bytes of every identifier string (scenario_id, spec_version, stage_id, gate_id, condition_id,
   * packet_id, schema_id, policy_id, provider_id, check_id, branch and fixed targets), and of every policy tag and
   * visibility label.
   */
  readonly maxIdBytes: number;
  /** Entries of each `policy_tags` list (conditions, packets, timeouts). */
  readonly maxPolicyTags: number;
  /** Entries of each packet's `visibility_labels`. */
  readonly maxVisibilityLabels: number;
  /**
   * Size of an entry packet's payload: canonical JSON bytes for `json`, raw length for `bytes`. Equal to the
   * reference's `MAX_PAYLOAD_BYTES` (engine §6), which it only enforces when the packet is issued.
   */
  readonly maxPacketPayloadBytes: number;
}

export const DEFAULT_SPEC_LIMITS: SpecLimits = Object.freeze({
  maxStages: 256,
  maxGatesPerStage: 64,
  maxEntryPacketsPerStage: 64,
  maxBranchRulesPerStage: 64,
  maxConditions: 1024,
  maxPolicies: 256,
  maxSchemas: 256,
  maxRequirementNodes: 1024,
  maxRequirementDepth: 32,
  maxIdBytes: 256,
  maxPolicyTags: 64,
  maxVisibilityLabels: 64,
  maxPacketPayloadBytes: 2_097_152,
});
