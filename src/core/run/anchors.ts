import { parseJson } from "../../json/parse.js";
import { isJsonObject, type JsonValue } from "../../json/value.js";
import { JsonParseError } from "../errors.js";
import type { EvidenceResult } from "./schema.js";

/** What a provider's anchors must look like (`[[anchors.providers]]`). */
export interface AnchorRequirement {
  anchor_type: string;
  /** Trimmed, de-duplicated and sorted. */
  required_fields: string[];
}

/**
 * Checks an answer's anchor against a requirement (evidence §3.4 step 2): the anchor must exist, have the
 * required type, and its value must be JSON text of an object whose required fields are strings or numbers.
 * Returns the reference's failure message, or null when the anchor satisfies the requirement.
 */
export function anchorViolation(result: EvidenceResult, requirement: AnchorRequirement): string | null {
  const anchor = result.evidence_anchor;
  if (anchor === null) return "missing evidence_anchor";
  if (anchor.anchor_type !== requirement.anchor_type) {
    return `anchor_type mismatch: expected ${requirement.anchor_type} got ${anchor.anchor_type}`;
  }
  let value: JsonValue;
  try {
    value = parseJson(anchor.anchor_value);
  } catch (error) {
    if (error instanceof JsonParseError) return "anchor_value must be canonical JSON";
    throw error;
  }
  if (!isJsonObject(value)) return "anchor_value must be a JSON object";
  for (const field of requirement.required_fields) {
    const problem = fieldProblem(field, value[field]);
    if (problem !== null) return problem;
  }
  return null;
}

function fieldProblem(field: string, value: JsonValue | undefined): string | null {
  if (value === undefined) return `anchor field ${field} missing`;
  if (value === null) return `anchor field ${field} must be set`;
  if (typeof value === "boolean") return `anchor field ${field} must be string or number`;
  if (typeof value === "object") return `anchor field ${field} must be scalar`;
  return null;
}

/** The answer that replaces one whose anchor failed: no value, no anchor, ref or signature, just the error. */
export function anchorInvalidResult(message: string): EvidenceResult {
  return {
    value: null,
    lane: "verified",
    error: { code: "anchor_invalid", message, details: null },
    evidence_hash: null,
    evidence_ref: null,
    evidence_anchor: null,
    signature: null,
    content_type: null,
  };
}

/** Normalizes configured required fields: trimmed, blanks dropped, sorted, de-duplicated. */
export function normalizeRequiredFields(fields: readonly string[]): string[] {
  return [...new Set(fields.map((field) => field.trim()).filter((field) => field.length > 0))].sort();
}
