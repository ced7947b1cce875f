import type { EvidenceContext } from "../core/run/evidence.js";
import type { EvidenceProviderError, EvidenceResult } from "../core/run/schema.js";
import type { EvidenceQuery } from "../core/spec/schema.js";
import type { JsonValue } from "../json/value.js";

export { EvidenceProviderFailure } from "../core/run/evidence.js";
export type { EvidenceContext };

/**
 * One evidence provider: it acquires evidence and nothing else. A provider answers with an `EvidenceResult`;
 * an answer that carries an in-band `error` is still an answer. A provider that cannot answer at all throws
 * `EvidenceProviderFailure(message)`, which the engine records as `provider_error` with the message
 * `evidence provider error: <message>`.
 */
export interface EvidenceProvider {
  readonly providerId: string;
  query(query: EvidenceQuery, context: EvidenceContext): Promise<EvidenceResult>;
  /** Releases child processes, sockets and the like. */
  close?(): Promise<void>;
}

export interface ResultExtras {
  lane?: EvidenceResult["lane"];
  evidence_ref?: EvidenceResult["evidence_ref"];
  evidence_anchor?: EvidenceResult["evidence_anchor"];
  content_type?: string | null;
}

/** A successful JSON answer. */
export function jsonEvidence(value: JsonValue, extras: ResultExtras = {}): EvidenceResult {
  return {
    value: { kind: "json", value },
    lane: extras.lane ?? "verified",
    error: null,
    evidence_hash: null,
    evidence_ref: extras.evidence_ref ?? null,
    evidence_anchor: extras.evidence_anchor ?? null,
    signature: null,
    content_type: extras.content_type === undefined ? "application/json" : extras.content_type,
  };
}

/** An answer without a value (for example an unset environment variable). */
export function emptyEvidence(extras: ResultExtras = {}): EvidenceResult {
  return { ...jsonEvidence(null, extras), value: null, content_type: extras.content_type ?? null };
}

/** An in-band error answer: no value, the error, and whatever ref and anchor were known before the failure. */
export function errorEvidence(error: EvidenceProviderError, extras: ResultExtras = {}): EvidenceResult {
  return { ...emptyEvidence(extras), error, content_type: null };
}
