import { z } from "zod";
import type { RuntimeDecision } from "./capabilities.js";
import { isPlainObject, type PlainJson, type PlainJsonObject, sortedCompactJson } from "./sorted-json.js";

/*
 * What Stage356 (mokkunsuzuki-code/stage356, `stage356_runtime_fail_closed_gate.py`) writes and how it decides
 * (ecosystem §4.2–§4.3), so that its files can be checked and its decision re-derived; and what a verification of
 * them takes in and yields (shared by the verifier and the Stage357 documents built from its result).
 */

export const STAGE356_ENGINE = "Runtime Verification & Fail-Closed Execution Gate";
export const STAGE355_ENGINE = "Signature Key Status Verification & Revocation Enforcement Layer";

/** Where Stage356 writes its files, relative to its repository root. */
export const STAGE356_PATHS = {
  receipt: "docs/runtime/stage356_runtime_execution_receipt.json",
  gate: "docs/runtime/stage356_runtime_fail_closed_gate.json",
} as const;

/** The Stage355 files Stage356 reads, by name inside their directory (`docs/keys`). */
export const STAGE355_FILE_NAMES = {
  result: "stage355_revocation_enforcement_result.json",
  status: "stage355_key_status_verification.json",
} as const;

/** Stage356's `previous_hash` when Stage355 gave it no entry hash. */
const MISSING_STAGE355_ENTRY_HASH = "MISSING_STAGE355_ENTRY_HASH";

export const STAGE356_CHECK_KEYS = [
  "stage355_result_exists",
  "stage355_status_exists",
  "stage355_decision_accept",
  "stage355_violations_empty",
  "stage355_result_sha256_present",
  "stage355_entry_hash_present",
  "stage355_entry_hash_matches_status_previous_binding",
  "stage355_no_private_keys",
  "stage355_no_real_pqc_signature_claim",
  "stage355_pqc_intent_not_active",
  "runtime_context_detected",
  "ci_context_valid_if_required",
] as const;
export type Stage356CheckKey = (typeof STAGE356_CHECK_KEYS)[number];
export type Stage356Checks = Record<Stage356CheckKey, boolean>;

export const STAGE356_SAFETY_BOUNDARY_KEYS = [
  "no_private_keys",
  "no_raw_secrets",
  "no_real_key_rotation_claim",
  "no_real_rekor_claim",
  "no_real_pqc_signature_claim",
  "runtime_gate_only",
] as const;

export const STAGE356_FAIL_CLOSED_POLICY_KEYS = [
  "block_if_stage355_missing",
  "block_if_stage355_decision_not_accept",
  "block_if_stage355_violations_present",
  "block_if_stage355_entry_hash_missing",
  "block_if_stage355_status_mismatch",
  "block_if_private_key_boundary_failed",
  "block_if_pqc_intent_claimed_active",
] as const;

/** Members each hash leaves out (ecosystem §4.3): the gate's entry hash does not cover its decision or reasons. */
export const HASH_EXCLUSIONS = {
  stage356Receipt: ["receipt_sha256"],
  stage356Gate: ["entry_hash", "runtime_decision", "reasons"],
  stage355Result: ["result_sha256"],
  stage355Status: ["entry_hash"],
} as const;

/** `created_at` of the series: UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`. */
export const TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export function seriesTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const NullableString = z.string().nullable();
const AnyMembers = z.record(z.string(), z.unknown());

export const Stage356ChecksSchema = z.strictObject(
  Object.fromEntries(STAGE356_CHECK_KEYS.map((key) => [key, z.boolean()])) as Record<Stage356CheckKey, z.ZodBoolean>,
);

/** The receipt's members and their types; `checks` is checked on its own by `Stage356ChecksSchema`. */
export const Stage356ReceiptSchema = z.strictObject({
  stage: z.number(),
  engine: z.string(),
  source_stage: z.number(),
  created_at: z.string(),
  runtime_decision: z.string(),
  previous_hash: z.string(),
  entry_hash: Sha256Hex,
  checks: AnyMembers,
  violations: z.array(z.string()),
  reasons: z.array(z.string()),
  receipt_sha256: Sha256Hex,
});
export type Stage356Receipt = z.output<typeof Stage356ReceiptSchema>;

export const Stage356GateSchema = z.strictObject({
  stage: z.number(),
  engine: z.string(),
  source_stage: z.number(),
  created_at: z.string(),
  previous_hash: z.string(),
  stage355_binding: z.strictObject({
    stage355_result_path: z.string(),
    stage355_status_path: z.string(),
    stage355_entry_hash: NullableString,
    stage355_result_sha256: NullableString,
  }),
  runtime_context: z.strictObject({
    is_github_actions: z.boolean(),
    github_actions_env: NullableString,
    github_run_id: NullableString,
    github_sha: NullableString,
    github_repository: NullableString,
    github_workflow: NullableString,
    local_execution: z.boolean(),
  }),
  checks: AnyMembers,
  violations: z.array(z.string()),
  fail_closed_policy: AnyMembers,
  safety_boundary: AnyMembers,
  entry_hash: Sha256Hex,
  runtime_decision: z.string(),
  reasons: z.array(z.string()),
});
export type Stage356Gate = z.output<typeof Stage356GateSchema>;

/** What one verification of Stage356's files takes in. */
export interface Stage356Inputs {
  /** File contents; `null` when the file is missing or unreadable. */
  receiptBytes: Uint8Array | null;
  gateBytes: Uint8Array | null;
  /** The two Stage355 files, for the deep chain check. */
  stage355?: { resultBytes: Uint8Array | null; statusBytes: Uint8Array | null };
  githubActions: boolean;
  enforce: boolean;
  /** `YYYY-MM-DDTHH:MM:SSZ`. */
  createdAt: string;
  /** How the inputs are named in the outputs. */
  paths: { receipt: string; gate: string };
}

/** The verified (or, on any failure, blocked) upstream decision and what the action receipt records about it. */
export interface Stage356Verification {
  /** Every check by name, in a fixed order; any `false` blocks. */
  checks: Record<string, boolean>;
  decision: RuntimeDecision;
  /** Stage356's violations when verified, else the failed checks. */
  violations: string[];
  /** Stage356's reasons when verified, else `check_failed:<check>` for each failed check. */
  reasons: string[];
  /** The Stage356 entry hash, declared values and the raw-file hash; `null` when not available. */
  stage356EntryHash: string | null;
  sourceReceiptSha256: string | null;
  sourceReceiptFileSha256: string | null;
  deep: boolean;
}

export interface StageHeader {
  stage: number;
  source_stage: number;
  engine: string;
}

export const STAGE356_HEADER: StageHeader = { stage: 356, source_stage: 355, engine: STAGE356_ENGINE };
export const STAGE355_HEADER: StageHeader = { stage: 355, source_stage: 354, engine: STAGE355_ENGINE };

export function hasHeader(document: PlainJsonObject, header: StageHeader): boolean {
  return (
    document.stage === header.stage &&
    document.source_stage === header.source_stage &&
    document.engine === header.engine
  );
}

/** `previous_hash` as Stage356 derives it from the Stage355 entry hash it bound. */
export function expectedPreviousHash(stage355EntryHash: string | null): string {
  return stage355EntryHash || MISSING_STAGE355_ENTRY_HASH;
}

/** Stage356's ordered block rules: the first failed check decides, with this reason. */
const BLOCK_RULES: ReadonlyArray<readonly [Stage356CheckKey, string]> = [
  ["stage355_result_exists", "stage355_result_missing"],
  ["stage355_status_exists", "stage355_status_missing"],
  ["stage355_decision_accept", "stage355_decision_not_accept"],
  ["stage355_violations_empty", "stage355_violations_present"],
  ["stage355_entry_hash_present", "stage355_entry_hash_missing"],
  ["stage355_entry_hash_matches_status_previous_binding", "stage355_entry_hash_mismatch"],
  ["stage355_no_private_keys", "private_key_boundary_failed"],
  ["stage355_pqc_intent_not_active", "pqc_intent_active_claim_detected"],
];

/** The decision and reasons Stage356 writes for these checks, in or out of GitHub Actions. */
export function deriveStage356Decision(
  checks: Stage356Checks,
  isGithubActions: boolean,
): { decision: RuntimeDecision; reasons: string[] } {
  const reasons = isGithubActions ? [] : ["local_context_detected_warn_only"];
  const failed = BLOCK_RULES.find(([check]) => !checks[check]);
  if (failed !== undefined) return { decision: "block", reasons: [...reasons, failed[1]] };
  if (!isGithubActions) return { decision: "warn", reasons: [...reasons, "runtime_allowed_with_local_warning"] };
  return { decision: "allow", reasons: ["runtime_allowed_in_ci_context"] };
}

/** The violation each failed check can add, in the order Stage356 appends them. */
const VIOLATIONS: ReadonlyArray<readonly [Stage356CheckKey, string]> = [
  ["stage355_decision_accept", "stage355_decision_not_accept_verification_ready"],
  ["stage355_violations_empty", "stage355_has_violations"],
  ["stage355_no_private_keys", "stage355_private_key_safety_boundary_failed"],
  ["stage355_no_real_pqc_signature_claim", "stage355_real_pqc_signature_claim_detected"],
  ["stage355_pqc_intent_not_active", "stage355_pqc_intent_active_claim_detected"],
];

/**
 * Whether Stage356 could have written these violations for these checks. Not an equality: Stage356 adds none for
 * a Stage355 file that is an empty object, which the checks alone do not reveal. Every violation must come from a
 * failed check, in Stage356's order.
 */
export function violationsFollowFromChecks(violations: readonly string[], checks: Stage356Checks): boolean {
  const possible = VIOLATIONS.filter(([check]) => !checks[check]).map(([, violation]) => violation);
  let next = 0;
  return violations.every((violation) => {
    next = possible.indexOf(violation, next) + 1;
    return next > 0;
  });
}

/** The twelve checks Stage356 computes from the two Stage355 files (`null` for a missing file), as Python does. */
export function deriveStage356Checks(result: PlainJsonObject | null, status: PlainJsonObject | null): Stage356Checks {
  const checks: Stage356Checks = {
    ...(Object.fromEntries(STAGE356_CHECK_KEYS.map((key) => [key, false])) as Stage356Checks),
    stage355_result_exists: result !== null,
    stage355_status_exists: status !== null,
    runtime_context_detected: true,
    ci_context_valid_if_required: true,
  };
  const entryHash = isTruthyObject(result) ? (result.entry_hash ?? null) : null;
  if (isTruthyObject(result)) {
    checks.stage355_decision_accept = result.decision === "accept_verification_ready";
    checks.stage355_violations_empty = Array.isArray(result.violations) && result.violations.length === 0;
    checks.stage355_result_sha256_present = isPythonString64(result.result_sha256);
    checks.stage355_entry_hash_present = isPythonString64(entryHash);
  }
  if (isTruthyObject(status)) {
    checks.stage355_entry_hash_matches_status_previous_binding =
      entryHash !== null && jsonEquals(entryHash, status.entry_hash ?? null);
    const safety = isPlainObject(status.safety_boundary) ? status.safety_boundary : {};
    checks.stage355_no_private_keys = safety.no_private_keys === true;
    checks.stage355_no_real_pqc_signature_claim = safety.no_real_pqc_signature_claim === true;
    checks.stage355_pqc_intent_not_active = safety.pqc_ml_dsa_active_signature_not_claimed === true;
  }
  return checks;
}

/** Python's `if obj:` for a loaded document: an empty dict is false. */
function isTruthyObject(value: PlainJsonObject | null): value is PlainJsonObject {
  return value !== null && Object.keys(value).length > 0;
}

/** `isinstance(v, str) and len(v) == 64`, where `len` counts code points. */
function isPythonString64(value: PlainJson | undefined): boolean {
  return typeof value === "string" && [...value].length === 64;
}

function jsonEquals(a: PlainJson, b: PlainJson): boolean {
  return sortedCompactJson(a) === sortedCompactJson(b);
}
