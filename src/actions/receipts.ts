import type { DecisionFacts, ReceiptIssuer } from "../core/run/receipts.js";
import type { DecisionOutcome, DecisionRecord } from "../core/run/schema.js";
import type { StoredReceipt } from "../core/run/store.js";
import { hashCanonical, sha256Hex } from "../json/hash.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../json/value.js";
import { canonicalJson } from "../json/write.js";
import { actionFor, type CapabilitySets, capabilitiesFor, type RuntimeDecision } from "./capabilities.js";

export const ACTION_RECEIPT_VERSION = "decision-gate.action-receipt/v1";
/** Receipts are hashed over this project's canonical JSON (RFC 8785 with exact integers). */
export const RECEIPT_CANONICALIZATION = "jcs-sha256";

export type DecisionKind = DecisionOutcome["kind"];

/** `[runtime_actions]`: how decisions become runtime decisions, and which capabilities each isolates. */
export interface ReceiptSettings {
  mapping: Record<DecisionKind, RuntimeDecision>;
  capabilities: CapabilitySets;
}

/** The spec's mapping (§6): a run that starts, advances or completes continues; a hold isolates; a failure ends. */
export const DEFAULT_MAPPING: Record<DecisionKind, RuntimeDecision> = {
  start: "allow",
  advance: "allow",
  complete: "allow",
  hold: "warn",
  fail: "block",
};

/**
 * The per-decision action layer: one metadata-only receipt per decision, bound to the decision record's hash and
 * chained to the run's previous receipt. Receipts carry ids, the mapping and reasons built from ids and outcome
 * kinds, never evidence values, payloads or secrets.
 */
export function receiptIssuer(settings: ReceiptSettings): ReceiptIssuer {
  return {
    issue(facts: DecisionFacts, previous: StoredReceipt | undefined): StoredReceipt {
      const { decision } = facts;
      const kind = decision.outcome.kind;
      const integrityHold = kind === "hold" && facts.integrityFailure;
      const runtimeDecision = integrityHold ? "block" : settings.mapping[kind];
      const action = actionFor(runtimeDecision);
      const body: JsonObject = {
        receipt_version: ACTION_RECEIPT_VERSION,
        tenant_id: facts.tenant_id,
        namespace_id: facts.namespace_id,
        run_id: facts.run_id,
        scenario_id: facts.scenario_id,
        stage_id: decision.stage_id,
        decision_id: decision.decision_id,
        decision_seq: decision.seq,
        trigger_id: decision.trigger_id,
        decision_kind: kind,
        runtime_decision: runtimeDecision,
        action,
        capabilities: capabilitiesFor(runtimeDecision, settings.capabilities),
        reasons: reasonsFor(decision.outcome, integrityHold),
        decision_hash: hashCanonical(decision),
        previous_hash: previous?.receipt_sha256 ?? null,
        canonicalization: RECEIPT_CANONICALIZATION,
      };
      return { ...body, decision_id: decision.decision_id, receipt_sha256: receiptHash(body) };
    },
  };
}

function reasonsFor(outcome: DecisionOutcome, integrityHold: boolean): string[] {
  switch (outcome.kind) {
    case "start":
      return [`decision start: stage ${outcome.stage_id}`];
    case "advance":
      return [`decision advance: ${outcome.from_stage} -> ${outcome.to_stage}${outcome.timeout ? " (timeout)" : ""}`];
    case "complete":
      return [`decision complete: stage ${outcome.stage_id}`];
    case "hold": {
      const held = `decision hold: unmet gates ${outcome.summary.unmet_gates.join(", ")}`;
      return integrityHold ? [held, "evidence failed an integrity check (anchor, signature or evidence hash)"] : [held];
    }
    case "fail":
      return [`decision fail: ${outcome.reason}`];
  }
}

/** `receipt_sha256`: SHA-256 of the canonical JSON of the receipt without that field. */
export function receiptHash(receipt: JsonObject): string {
  const { receipt_sha256: _ignored, ...body } = receipt;
  return sha256Hex(canonicalJson(body));
}

/**
 * Checks a run's receipts against its decision log: each receipt's hash recomputes, each links to the one before
 * (the first to none), and each is bound to the decision it names. Returns the problems found.
 */
export function receiptChainProblems(receipts: readonly JsonValue[], decisions: readonly DecisionRecord[]): string[] {
  const problems: string[] = [];
  const decisionHashes = new Map(decisions.map((decision) => [decision.decision_id, hashCanonical(decision).value]));
  let previous: string | null = null;
  receipts.forEach((receipt, index) => {
    const where = `action receipt ${index + 1}`;
    if (!isJsonObject(receipt) || typeof receipt.receipt_sha256 !== "string") {
      problems.push(`${where}: not an action receipt`);
      return;
    }
    if (receiptHash(receipt) !== receipt.receipt_sha256) problems.push(`${where}: receipt_sha256 mismatch`);
    if ((receipt.previous_hash ?? null) !== previous) problems.push(`${where}: previous_hash does not chain`);
    const bound = decisionHashes.get(String(receipt.decision_id));
    const claimed = isJsonObject(receipt.decision_hash) ? receipt.decision_hash.value : undefined;
    if (bound === undefined || bound !== claimed)
      problems.push(`${where}: not bound to decision ${receipt.decision_id}`);
    previous = receipt.receipt_sha256;
  });
  return problems;
}

export const RECEIPTS_ARTIFACT_PATH = "artifacts/action_receipts.json";
