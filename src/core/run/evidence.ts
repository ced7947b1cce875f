import { hashBytes, hashCanonical } from "../../json/hash.js";
import { evaluateComparator } from "../compare/comparator.js";
import { ControlPlaneError, DecisionGateError, HashError } from "../errors.js";
import { evaluateRequirement } from "../logic/evaluate.js";
import type { ConditionSpec, EvidenceQuery, Requirement, ScenarioSpec, StageSpec } from "../spec/schema.js";
import type { Timestamp, TriState, TrustLane } from "../wire/common.js";
import type { EvidenceRecord, EvidenceResult, GateEvalRecord } from "./schema.js";

/** Largest evidence value (canonical JSON bytes, or raw bytes) the engine accepts. */
export const MAX_EVIDENCE_VALUE_BYTES = 1_048_576;

/** What a provider is told about the question it is asked. */
export interface EvidenceContext {
  tenant_id: bigint;
  namespace_id: bigint;
  run_id: string;
  scenario_id: string;
  stage_id: string;
  trigger_id: string;
  trigger_time: Timestamp;
  correlation_id: string | null;
}

/** Providers that a spec needs but that are not registered, or are blocked by policy. */
export interface ProviderMissing {
  missing_providers: string[];
  required_capabilities: string[];
  blocked_by_policy: boolean;
}

/**
 * Where the control plane gets evidence. Implementations acquire evidence only; they throw
 * `EvidenceProviderFailure` (or any `DecisionGateError`) when a provider fails.
 */
export interface EvidenceSource {
  query(query: EvidenceQuery, context: EvidenceContext): Promise<EvidenceResult>;
  validateProviders(spec: ScenarioSpec): ProviderMissing | null;
}

export class EvidenceProviderFailure extends DecisionGateError {
  /** The failure is an integrity failure (a signature or evidence hash), not an unavailable provider. */
  readonly integrity: boolean;

  constructor(message: string, options: { integrity?: boolean } = {}) {
    super("control_plane", "provider_error", `evidence provider error: ${message}`);
    this.integrity = options.integrity === true;
  }
}

/** The evidence of one stage: the records per condition, and whether any answer failed an integrity check. */
export interface StageEvidence {
  records: Map<string, EvidenceRecord>;
  integrityFailure: boolean;
}

/** The trust settings that apply to a run: a global minimum lane and per-provider tightenings. */
export interface TrustPolicy {
  minLane: TrustLane;
  providerMinLanes?: ReadonlyMap<string, TrustLane>;
}

export const DEFAULT_TRUST_POLICY: TrustPolicy = { minLane: "verified" };

/** The conditions a stage's gates reference, once each, in order of first appearance. */
export function stageConditionIds(stage: StageSpec): string[] {
  return conditionIdsOf(stage.gates.map((gate) => gate.requirement));
}

function conditionIdsOf(requirements: Requirement[]): string[] {
  const ids = new Set<string>();
  for (const requirement of requirements) collectConditionIds(requirement, ids);
  return [...ids];
}

function collectConditionIds(requirement: Requirement, into: Set<string>): void {
  if ("Condition" in requirement) into.add(requirement.Condition);
  else if ("Not" in requirement) collectConditionIds(requirement.Not, into);
  else for (const child of childrenOf(requirement)) collectConditionIds(child, into);
}

function childrenOf(requirement: Requirement): Requirement[] {
  if ("And" in requirement) return requirement.And;
  if ("Or" in requirement) return requirement.Or;
  if ("RequireGroup" in requirement) return requirement.RequireGroup.reqs;
  return [];
}

/**
 * Queries every condition of the stage (no short-circuit), normalizes each result and compares it, then
 * withholds from the record the values that `recording` does not allow (by default it allows all: the reference
 * records every value, and its disclosure policy governs only what is shown). Returns the records keyed by
 * condition id, before any per-gate trust adjustment.
 */
export async function queryStageEvidence(
  spec: ScenarioSpec,
  stage: StageSpec,
  source: EvidenceSource,
  context: EvidenceContext,
  recording: Disclosure,
): Promise<StageEvidence> {
  const conditions = new Map(spec.conditions.map((condition) => [condition.condition_id, condition]));
  const records = new Map<string, EvidenceRecord>();
  let integrityFailure = false;
  for (const conditionId of stageConditionIds(stage)) {
    const condition = conditions.get(conditionId);
    if (condition === undefined) continue;
    const answer = await queryProvider(source, condition, context);
    integrityFailure ||= answer.integrityFailure || answer.result.error?.code === "anchor_invalid";
    const result = normalizeResult(answer.result);
    const status =
      result.error !== null ? "Unknown" : evaluateComparator(condition.comparator, expectedOf(condition), result.value);
    const recorded = recording.allowsRaw(condition.query.provider_id) ? result : redactValue(result);
    records.set(conditionId, { condition_id: conditionId, status, result: recorded });
  }
  return { records, integrityFailure };
}

function expectedOf(condition: ConditionSpec) {
  return condition.expected === null ? undefined : condition.expected;
}

async function queryProvider(source: EvidenceSource, condition: ConditionSpec, context: EvidenceContext) {
  try {
    return { result: await source.query(condition.query, context), integrityFailure: false };
  } catch (error) {
    const integrityFailure = error instanceof EvidenceProviderFailure && error.integrity;
    return { result: providerErrorResult(error), integrityFailure };
  }
}

/** The answer recorded for a provider that could not answer: `provider_error` with the failure's message. */
export function providerErrorResult(failure: unknown): EvidenceResult {
  const message =
    failure instanceof EvidenceProviderFailure
      ? failure.message
      : `evidence provider error: ${failure instanceof Error ? failure.message : String(failure)}`;
  return {
    value: null,
    lane: "verified",
    error: { code: "provider_error", message, details: null },
    evidence_hash: null,
    evidence_ref: null,
    evidence_anchor: null,
    signature: null,
    content_type: null,
  };
}

/** Whether raw evidence values of a provider may be kept or shown (the disclosure policy, evidence §4). */
export interface Disclosure {
  allowsRaw(providerId: string): boolean;
}

/** No raw value is kept or shown; hashes, anchors and refs still are. */
export const REDACT_ALL: Disclosure = { allowsRaw: () => false };

/** Every raw value is kept: what the reference records in run state and runpacks. */
export const KEEP_ALL: Disclosure = { allowsRaw: () => true };

/** Drops what the disclosure policy must not reveal: the value and its content type. */
export function redactValue(result: EvidenceResult): EvidenceResult {
  return { ...result, value: null, content_type: null };
}

/** Clears value-derived fields of failed results and recomputes `evidence_hash` of successful ones. */
export function normalizeResult(result: EvidenceResult): EvidenceResult {
  if (result.error !== null) return { ...result, value: null, evidence_hash: null, content_type: null };
  if (result.value === null) return result;
  return { ...result, evidence_hash: evidenceValueHash(result.value) };
}

function evidenceValueHash(value: NonNullable<EvidenceResult["value"]>) {
  try {
    if (value.kind === "bytes") {
      if (value.value.length > MAX_EVIDENCE_VALUE_BYTES) throw sizeError(value.value.length);
      return hashBytes(value.value);
    }
    return hashCanonical(value.value, MAX_EVIDENCE_VALUE_BYTES);
  } catch (error) {
    if (error instanceof HashError && error.code === "size_limit_exceeded")
      throw sizeError(Number(error.details?.actual));
    throw error;
  }
}

function sizeError(actual: number): ControlPlaneError {
  return new ControlPlaneError(
    "evidence_too_large",
    `evidence payload exceeds size limit (${actual} > ${MAX_EVIDENCE_VALUE_BYTES})`,
  );
}

const LANE_RANK: Record<TrustLane, number> = { asserted: 0, verified: 1 };
const LANE_NAME: Record<TrustLane, string> = { asserted: "Asserted", verified: "Verified" };

function stricter(a: TrustLane, b: TrustLane | undefined): TrustLane {
  return b !== undefined && LANE_RANK[b] > LANE_RANK[a] ? b : a;
}

/** Evaluates every gate of the stage over the queried records, applying trust per gate (engine §4.5). */
export function evaluateGates(
  spec: ScenarioSpec,
  stage: StageSpec,
  records: Map<string, EvidenceRecord>,
  trust: TrustPolicy,
  triggerId: string,
): GateEvalRecord[] {
  const conditions = new Map(spec.conditions.map((condition) => [condition.condition_id, condition]));
  return stage.gates.map((gate) => {
    const gateLane = stricter(trust.minLane, gate.trust?.min_lane);
    const adjusted = new Map<string, EvidenceRecord>();
    for (const conditionId of conditionIdsOf([gate.requirement])) {
      const record = records.get(conditionId);
      const condition = conditions.get(conditionId);
      if (record === undefined || condition === undefined) continue;
      const providerLane = stricter(trust.minLane, trust.providerMinLanes?.get(condition.query.provider_id));
      const required = stricter(stricter(providerLane, condition.trust?.min_lane), gateLane);
      adjusted.set(conditionId, applyTrust(record, required));
    }
    const statusOf = (conditionId: string): TriState => adjusted.get(conditionId)?.status ?? "Unknown";
    const { status, trace } = evaluateRequirement(gate.requirement, statusOf);
    const evidence = [...adjusted.values()].sort((a, b) => compareBytes(a.condition_id, b.condition_id));
    return {
      trigger_id: triggerId,
      stage_id: stage.stage_id,
      evaluation: { gate_id: gate.gate_id, status, trace },
      evidence,
    };
  });
}

function applyTrust(record: EvidenceRecord, required: TrustLane): EvidenceRecord {
  const lane = record.result.lane;
  if (LANE_RANK[lane] >= LANE_RANK[required]) return record;
  const error = record.result.error ?? {
    code: "trust_lane",
    message: `evidence lane ${LANE_NAME[lane]} does not satisfy ${LANE_NAME[required]}`,
    details: null,
  };
  return { ...record, status: "Unknown", result: { ...record.result, error } };
}

/** Byte-wise UTF-8 order, as Rust orders `String`s. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
