import { z } from "zod";
import { PacketPayload } from "../spec/schema.js";
import {
  AnyJson,
  Bytes,
  HashDigest,
  NamespaceId,
  nullable,
  TenantId,
  Timestamp,
  TriState,
  TrustLane,
  U64,
} from "../wire/common.js";

/* Wire types of a run (engine §4.1, evidence §3.1). Field order follows the reference's declaration order. */

export const DispatchTarget = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("agent"), agent_id: z.string() }),
  z.object({ kind: z.literal("session"), session_id: z.string() }),
  z.object({ kind: z.literal("external"), system: z.string(), target: z.string() }),
  z.object({ kind: z.literal("channel"), channel: z.string() }),
]);
export type DispatchTarget = z.output<typeof DispatchTarget>;

export const RunStatus = z.enum(["active", "completed", "failed"]);
export type RunStatus = z.output<typeof RunStatus>;

export const TriggerKind = z.enum(["agent_request_next", "tick", "external_event", "backend_event"]);
export type TriggerKind = z.output<typeof TriggerKind>;

/** `policy_tags` is accepted and then dropped, as the reference does. */
export const RunConfig = z.object({
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  run_id: z.string(),
  scenario_id: z.string(),
  dispatch_targets: z.array(DispatchTarget),
  policy_tags: z.array(z.string()),
});
export type RunConfig = z.output<typeof RunConfig>;

export const TriggerEvent = z.object({
  trigger_id: z.string(),
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  run_id: z.string(),
  kind: TriggerKind,
  time: Timestamp,
  source_id: z.string(),
  payload: nullable(PacketPayload),
  correlation_id: nullable(z.string()),
});
export type TriggerEvent = z.output<typeof TriggerEvent>;

export const TriggerRecord = z.object({ seq: U64, event: TriggerEvent });
export type TriggerRecord = z.output<typeof TriggerRecord>;

export const SafeSummary = z.object({
  status: z.literal("hold"),
  unmet_gates: z.array(z.string()),
  retry_hint: z.string(),
  policy_tags: z.array(z.string()),
});
export type SafeSummary = z.output<typeof SafeSummary>;

export const DecisionOutcome = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("start"), stage_id: z.string() }),
  z.object({ kind: z.literal("advance"), from_stage: z.string(), to_stage: z.string(), timeout: z.boolean() }),
  z.object({ kind: z.literal("hold"), summary: SafeSummary }),
  z.object({ kind: z.literal("fail"), reason: z.string() }),
  z.object({ kind: z.literal("complete"), stage_id: z.string() }),
]);
export type DecisionOutcome = z.output<typeof DecisionOutcome>;

export const DecisionRecord = z.object({
  decision_id: z.string(),
  seq: U64,
  trigger_id: z.string(),
  stage_id: z.string(),
  decided_at: Timestamp,
  outcome: DecisionOutcome,
  correlation_id: nullable(z.string()),
});
export type DecisionRecord = z.output<typeof DecisionRecord>;

export const EvidenceValue = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("json"), value: AnyJson }),
  z.object({ kind: z.literal("bytes"), value: Bytes }),
]);
export type EvidenceValue = z.output<typeof EvidenceValue>;

export const EvidenceProviderError = z.object({
  code: z.string(),
  message: z.string(),
  details: nullable(AnyJson),
});
export type EvidenceProviderError = z.output<typeof EvidenceProviderError>;

export const EvidenceAnchor = z.object({ anchor_type: z.string(), anchor_value: z.string() });
export const EvidenceRef = z.object({ uri: z.string() });
export const EvidenceSignature = z.object({ scheme: z.string(), key_id: z.string(), signature: Bytes });

export const EvidenceResult = z.object({
  value: nullable(EvidenceValue),
  lane: TrustLane.default("verified"),
  error: nullable(EvidenceProviderError),
  evidence_hash: nullable(HashDigest),
  evidence_ref: nullable(EvidenceRef),
  evidence_anchor: nullable(EvidenceAnchor),
  signature: nullable(EvidenceSignature),
  content_type: nullable(z.string()),
});
export type EvidenceResult = z.output<typeof EvidenceResult>;

export const EvidenceRecord = z.object({ condition_id: z.string(), status: TriState, result: EvidenceResult });
export type EvidenceRecord = z.output<typeof EvidenceRecord>;

export const TraceEntry = z.object({ condition_id: z.string(), status: TriState });
export type TraceEntry = z.output<typeof TraceEntry>;

export const GateEvaluation = z.object({ gate_id: z.string(), status: TriState, trace: z.array(TraceEntry) });
export type GateEvaluation = z.output<typeof GateEvaluation>;

export const GateEvalRecord = z.object({
  trigger_id: z.string(),
  stage_id: z.string(),
  evaluation: GateEvaluation,
  evidence: z.array(EvidenceRecord),
});
export type GateEvalRecord = z.output<typeof GateEvalRecord>;

export const PacketEnvelope = z.object({
  scenario_id: z.string(),
  run_id: z.string(),
  stage_id: z.string(),
  packet_id: z.string(),
  schema_id: z.string(),
  content_type: z.string(),
  content_hash: HashDigest,
  visibility: z.object({ labels: z.array(z.string()), policy_tags: z.array(z.string()) }),
  expiry: nullable(Timestamp),
  correlation_id: nullable(z.string()),
  issued_at: Timestamp,
});
export type PacketEnvelope = z.output<typeof PacketEnvelope>;

export const DispatchReceipt = z.object({
  dispatch_id: z.string(),
  target: DispatchTarget,
  receipt_hash: HashDigest,
  dispatched_at: Timestamp,
  dispatcher: z.string(),
});
export type DispatchReceipt = z.output<typeof DispatchReceipt>;

export const PacketRecord = z.object({
  envelope: PacketEnvelope,
  payload: PacketPayload,
  receipts: z.array(DispatchReceipt),
  decision_id: z.string(),
});
export type PacketRecord = z.output<typeof PacketRecord>;

export const SubmissionRecord = z.object({
  submission_id: z.string(),
  run_id: z.string(),
  payload: PacketPayload,
  content_type: z.string(),
  content_hash: HashDigest,
  submitted_at: Timestamp,
  correlation_id: nullable(z.string()),
});
export type SubmissionRecord = z.output<typeof SubmissionRecord>;

export const ToolCallErrorDetails = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("message"), info: z.string() }),
  z.object({
    kind: z.literal("provider_missing"),
    missing_providers: z.array(z.string()),
    required_capabilities: z.array(z.string()),
    blocked_by_policy: z.boolean(),
  }),
]);

export const ToolCallError = z.object({
  code: z.string(),
  message: z.string(),
  details: nullable(ToolCallErrorDetails),
});
export type ToolCallError = z.output<typeof ToolCallError>;

export const ToolCallMethod = z.enum(["scenario.next", "scenario.status", "scenario.submit", "scenario.trigger"]);
export type ToolCallMethod = z.output<typeof ToolCallMethod>;

export const ToolCallRecord = z.object({
  call_id: z.string(),
  method: ToolCallMethod,
  request_hash: HashDigest,
  response_hash: HashDigest,
  called_at: Timestamp,
  correlation_id: nullable(z.string()),
  error: nullable(ToolCallError),
});
export type ToolCallRecord = z.output<typeof ToolCallRecord>;

export const RunState = z.object({
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  run_id: z.string(),
  scenario_id: z.string(),
  spec_hash: HashDigest,
  current_stage_id: z.string(),
  stage_entered_at: Timestamp,
  status: RunStatus,
  dispatch_targets: z.array(DispatchTarget),
  triggers: z.array(TriggerRecord),
  gate_evals: z.array(GateEvalRecord),
  decisions: z.array(DecisionRecord),
  packets: z.array(PacketRecord),
  submissions: z.array(SubmissionRecord),
  tool_calls: z.array(ToolCallRecord),
});
export type RunState = z.output<typeof RunState>;
