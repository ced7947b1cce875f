import { type HashDigest, hashBytes, hashCanonical } from "../../json/hash.js";
import type { DispatchPolicy } from "../dispatch/policy.js";
import { ControlPlaneError, HashError } from "../errors.js";
import type { PacketPayload, StageSpec } from "../spec/schema.js";
import type { Timestamp } from "../wire/common.js";
import type { DispatchReceipt, DispatchTarget, PacketEnvelope, PacketRecord } from "./schema.js";

/** Largest packet or submission payload (canonical JSON bytes, or raw bytes). */
export const MAX_PAYLOAD_BYTES = 2_097_152;

/** Delivers a packet to one target and returns the receipt. */
export interface Dispatcher {
  dispatch(target: DispatchTarget, envelope: PacketEnvelope, payload: PacketPayload): Promise<DispatchReceipt>;
}

/** The reference's MCP dispatcher: records the delivery; agents fetch packets through the tools. */
export const mcpDispatcher: Dispatcher = {
  async dispatch(target, envelope) {
    return {
      dispatch_id: `mcp-${envelope.packet_id}`,
      target,
      receipt_hash: hashCanonical(envelope),
      dispatched_at: envelope.issued_at,
      dispatcher: "mcp",
    };
  },
};

/** `content_hash` of a payload: canonical JSON or raw bytes (≤ 2 MiB), or the external reference's hash. */
export function payloadHash(payload: PacketPayload): HashDigest {
  if (payload.kind === "external") return payload.content_ref.content_hash;
  if (payload.kind === "bytes") {
    if (payload.bytes.length > MAX_PAYLOAD_BYTES) throw payloadTooLarge(payload.bytes.length);
    return hashBytes(payload.bytes);
  }
  try {
    return hashCanonical(payload.value, MAX_PAYLOAD_BYTES);
  } catch (error) {
    if (error instanceof HashError && error.code === "size_limit_exceeded") {
      throw payloadTooLarge(Number(error.details?.actual));
    }
    throw error;
  }
}

function payloadTooLarge(actual: number): ControlPlaneError {
  return new ControlPlaneError("payload_too_large", `payload exceeds size limit (${actual} > ${MAX_PAYLOAD_BYTES})`);
}

export interface PacketIssue {
  scenarioId: string;
  runId: string;
  stage: StageSpec;
  decisionId: string;
  issuedAt: Timestamp;
  correlationId: string | null;
  targets: DispatchTarget[];
}

/**
 * Issues the entry packets of an entered stage (engine §4.10): hash, envelope, then for each target the
 * dispatch policy and the dispatcher. Throws on any failure; callers decide what a failure means.
 */
export async function issueStagePackets(
  issue: PacketIssue,
  policy: DispatchPolicy,
  dispatcher: Dispatcher,
): Promise<PacketRecord[]> {
  const records: PacketRecord[] = [];
  for (const packet of issue.stage.entry_packets) {
    const envelope: PacketEnvelope = {
      scenario_id: issue.scenarioId,
      run_id: issue.runId,
      stage_id: issue.stage.stage_id,
      packet_id: packet.packet_id,
      schema_id: packet.schema_id,
      content_type: packet.content_type,
      content_hash: payloadHash(packet.payload),
      visibility: { labels: packet.visibility_labels, policy_tags: packet.policy_tags },
      expiry: packet.expiry,
      correlation_id: issue.correlationId,
      issued_at: issue.issuedAt,
    };
    const receipts: DispatchReceipt[] = [];
    for (const target of issue.targets) {
      if (policy.authorize(target, envelope, packet.payload) === "deny") {
        throw new ControlPlaneError("policy_denied", "policy denied disclosure");
      }
      receipts.push(await dispatcher.dispatch(target, envelope, packet.payload));
    }
    records.push({ envelope, payload: packet.payload, receipts, decision_id: issue.decisionId });
  }
  return records;
}
