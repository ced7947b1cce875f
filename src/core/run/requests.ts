import { z } from "zod";
import { PacketPayload } from "../spec/schema.js";
import { NamespaceId, nullable, TenantId, Timestamp } from "../wire/common.js";
import { DecisionRecord, PacketRecord, RunStatus, SafeSummary, SubmissionRecord } from "./schema.js";

/* Core requests and results of the control plane (engine §4.1). Their canonical hashes are recorded in
 * tool-call records, so their field sets must match the reference's core structs exactly. */

export const NextRequest = z.object({
  run_id: z.string(),
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  trigger_id: z.string(),
  agent_id: z.string(),
  time: Timestamp,
  correlation_id: nullable(z.string()),
});
export type NextRequest = z.output<typeof NextRequest>;

export const StatusRequest = z.object({
  run_id: z.string(),
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  requested_at: Timestamp,
  correlation_id: nullable(z.string()),
});
export type StatusRequest = z.output<typeof StatusRequest>;

export const SubmitRequest = z.object({
  run_id: z.string(),
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  submission_id: z.string(),
  payload: PacketPayload,
  content_type: z.string(),
  submitted_at: Timestamp,
  correlation_id: nullable(z.string()),
});
export type SubmitRequest = z.output<typeof SubmitRequest>;

export const NextResult = z.object({
  decision: DecisionRecord,
  packets: z.array(PacketRecord),
  status: RunStatus,
});
export type NextResult = z.output<typeof NextResult>;

export const ScenarioStatus = z.object({
  run_id: z.string(),
  scenario_id: z.string(),
  current_stage_id: z.string(),
  status: RunStatus,
  last_decision: nullable(DecisionRecord),
  issued_packet_ids: z.array(z.string()),
  safe_summary: nullable(SafeSummary),
});
export type ScenarioStatus = z.output<typeof ScenarioStatus>;

export const SubmitResult = z.object({ record: SubmissionRecord });
export type SubmitResult = z.output<typeof SubmitResult>;
