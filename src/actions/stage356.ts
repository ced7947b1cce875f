import type { z } from "zod";
import { sha256Hex } from "../json/hash.js";
import { isRuntimeDecision } from "./capabilities.js";
import { type PlainJsonObject, parsePlainObject, sortedJsonSha256Without } from "./sorted-json.js";
import {
  deriveStage356Checks,
  deriveStage356Decision,
  expectedPreviousHash,
  HASH_EXCLUSIONS,
  hasHeader,
  STAGE355_HEADER,
  STAGE356_CHECK_KEYS,
  STAGE356_FAIL_CLOSED_POLICY_KEYS,
  STAGE356_HEADER,
  STAGE356_SAFETY_BOUNDARY_KEYS,
  type Stage356Checks,
  Stage356ChecksSchema,
  type Stage356Gate,
  Stage356GateSchema,
  type Stage356Inputs,
  type Stage356Receipt,
  Stage356ReceiptSchema,
  type Stage356Verification,
  TIMESTAMP_PATTERN,
  violationsFollowFromChecks,
} from "./stage356-format.js";
import { buildStage357Result, type Stage357Result } from "./stage357-documents.js";

/*
 * Stage357 over Stage356 receipts (spec §6 item 2, ecosystem §4.4): verify the receipt and gate fail closed,
 * re-derive the decision, and map it to an action. Pure: the files' bytes, the context and the clock come in.
 */

export function evaluateStage356(inputs: Stage356Inputs): Stage357Result {
  return buildStage357Result(verifyStage356(inputs), inputs);
}

export function verifyStage356(inputs: Stage356Inputs): Stage356Verification {
  const receipt = loadDocument(inputs.receiptBytes);
  const gate = loadDocument(inputs.gateBytes);
  const receiptFields = receipt.object && decodeWith(Stage356ReceiptSchema, receipt.object);
  const gateFields = gate.object && decodeWith(Stage356GateSchema, gate.object);
  const pair = receiptFields && gateFields && { receipt: receiptFields, gate: gateFields };
  const receiptChecks = receiptFields && decodeWith(Stage356ChecksSchema, receiptFields.checks);
  const checks: Record<string, boolean> = {
    ...documentChecks("receipt", receipt, STAGE356_HEADER),
    receipt_fields_valid: receiptFields !== undefined,
    receipt_checks_complete: receiptChecks !== undefined,
    ...documentChecks("gate", gate, STAGE356_HEADER),
    gate_fields_valid: gateFields !== undefined,
    gate_checks_complete: gateFields !== undefined && decodeWith(Stage356ChecksSchema, gateFields.checks) !== undefined,
    receipt_sha256_valid: hashMatches(receipt.object, HASH_EXCLUSIONS.stage356Receipt, receiptFields?.receipt_sha256),
    gate_entry_hash_valid: hashMatches(gate.object, HASH_EXCLUSIONS.stage356Gate, gateFields?.entry_hash),
    ...pairChecks(pair),
    ...rederivationChecks(pair, receiptChecks),
    ...gateBoundaryChecks(gateFields),
    ...(inputs.stage355 ? deepChecks(inputs.stage355, pair, receiptChecks) : {}),
  };
  return { ...outcome(checks, receiptFields), ...declaredHashes(receipt), deep: inputs.stage355 !== undefined };
}

/** The outcome: the declared decision when every check passed, else `block` with the failed checks. */
function outcome(checks: Record<string, boolean>, receiptFields: Stage356Receipt | undefined) {
  const failed = Object.keys(checks).filter((name) => !checks[name]);
  const declared = receiptFields?.runtime_decision;
  const verified = failed.length === 0 && receiptFields !== undefined && isRuntimeDecision(declared);
  return {
    checks,
    decision: verified ? declared : "block",
    violations: verified ? [...receiptFields.violations] : failed,
    reasons: verified ? [...receiptFields.reasons] : failed.map((name) => `check_failed:${name}`),
  };
}

/** What the receipt declares about itself, recorded even when verification failed, and its raw-file hash. */
function declaredHashes(receipt: LoadedDocument) {
  return {
    stage356EntryHash: declaredHash(receipt.object, "entry_hash"),
    sourceReceiptSha256: declaredHash(receipt.object, "receipt_sha256"),
    sourceReceiptFileSha256: receipt.bytes === null ? null : sha256Hex(receipt.bytes),
  };
}

interface LoadedDocument {
  bytes: Uint8Array | null;
  /** The document as a JSON object the Stage356 canonicalization accepts. */
  object: PlainJsonObject | undefined;
}

function loadDocument(bytes: Uint8Array | null): LoadedDocument {
  return { bytes, object: bytes === null ? undefined : parsePlainObject(bytes) };
}

/** File present; parses to a JSON object without floats or non-ASCII keys; right stage, source stage and engine. */
function documentChecks(name: string, document: LoadedDocument, header: typeof STAGE356_HEADER) {
  return {
    [`${name}_readable`]: document.bytes !== null,
    [`${name}_parsed`]: document.object !== undefined,
    [`${name}_header_valid`]: document.object !== undefined && hasHeader(document.object, header),
  };
}

function decodeWith<T extends z.ZodType>(schema: T, value: unknown): z.output<T> | undefined {
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

function hashMatches(
  document: PlainJsonObject | undefined,
  excluded: readonly string[],
  declared: string | undefined,
): boolean {
  return document !== undefined && declared !== undefined && sortedJsonSha256Without(document, excluded) === declared;
}

interface Stage356Pair {
  receipt: Stage356Receipt;
  gate: Stage356Gate;
}

/** The receipt and gate describe the same evaluation (ecosystem §4.4 items 2–4 and 6). */
function pairChecks(pair: Stage356Pair | undefined) {
  const both = (test: (pair: Stage356Pair) => boolean) => pair !== undefined && test(pair);
  return {
    entry_hash_bound: both(({ receipt, gate }) => receipt.entry_hash === gate.entry_hash),
    previous_hash_bound: both(
      ({ receipt, gate }) =>
        receipt.previous_hash === gate.previous_hash &&
        gate.previous_hash === expectedPreviousHash(gate.stage355_binding.stage355_entry_hash),
    ),
    created_at_valid: both(
      ({ receipt, gate }) => TIMESTAMP_PATTERN.test(receipt.created_at) && receipt.created_at === gate.created_at,
    ),
    decision_known: both(({ receipt, gate }) =>
      [receipt, gate].every((file) => isRuntimeDecision(file.runtime_decision)),
    ),
    decision_consistent: both(({ receipt, gate }) => receipt.runtime_decision === gate.runtime_decision),
    checks_consistent: both(({ receipt, gate }) =>
      STAGE356_CHECK_KEYS.every((key) => receipt.checks[key] === gate.checks[key]),
    ),
    violations_consistent: both(({ receipt, gate }) => sameStrings(receipt.violations, gate.violations)),
    reasons_consistent: both(({ receipt, gate }) => sameStrings(receipt.reasons, gate.reasons)),
    violations_empty_unless_block: both(
      ({ receipt }) => receipt.runtime_decision === "block" || receipt.violations.length === 0,
    ),
  };
}

/** The decision, reasons and violations follow from the checks by Stage356's rules (ecosystem §4.4 item 5). */
function rederivationChecks(pair: Stage356Pair | undefined, checks: Stage356Checks | undefined) {
  const derived = pair && checks && deriveStage356Decision(checks, pair.gate.runtime_context.is_github_actions);
  return {
    decision_rederived: derived !== undefined && derived.decision === pair?.receipt.runtime_decision,
    reasons_rederived:
      derived !== undefined && pair !== undefined && sameStrings(derived.reasons, pair.receipt.reasons),
    violations_rederived:
      pair !== undefined && checks !== undefined && violationsFollowFromChecks(pair.receipt.violations, checks),
  };
}

/** The gate's own declarations: the context it recorded, its safety boundary and fail-closed policy. */
function gateBoundaryChecks(gate: Stage356Gate | undefined) {
  const context = gate?.runtime_context;
  return {
    runtime_context_consistent:
      context !== undefined &&
      context.is_github_actions === (context.github_actions_env === "true") &&
      context.local_execution === !context.is_github_actions,
    safety_boundary_intact: gate !== undefined && allTrue(gate.safety_boundary, STAGE356_SAFETY_BOUNDARY_KEYS),
    fail_closed_policy_intact: gate !== undefined && allTrue(gate.fail_closed_policy, STAGE356_FAIL_CLOSED_POLICY_KEYS),
  };
}

/** Deep mode: the Stage355 files verify and are the ones Stage356 read (ecosystem §4.4 item 3). */
function deepChecks(
  files: NonNullable<Stage356Inputs["stage355"]>,
  pair: Stage356Pair | undefined,
  receiptChecks: Stage356Checks | undefined,
) {
  const result = loadDocument(files.resultBytes);
  const status = loadDocument(files.statusBytes);
  const resultHash = result.object?.result_sha256;
  const resultEntryHash = result.object?.entry_hash;
  const statusEntryHash = status.object?.entry_hash;
  const derivedChecks = deriveStage356Checks(result.object ?? null, status.object ?? null);
  return {
    ...documentChecks("stage355_result", result, STAGE355_HEADER),
    ...documentChecks("stage355_status", status, STAGE355_HEADER),
    stage355_result_sha256_valid: hashMatches(
      result.object,
      HASH_EXCLUSIONS.stage355Result,
      stringOrUndefined(resultHash),
    ),
    stage355_status_entry_hash_valid: hashMatches(
      status.object,
      HASH_EXCLUSIONS.stage355Status,
      stringOrUndefined(statusEntryHash),
    ),
    stage355_entry_hash_bound:
      pair !== undefined &&
      typeof resultEntryHash === "string" &&
      resultEntryHash === statusEntryHash &&
      resultEntryHash === pair.receipt.previous_hash,
    stage355_result_sha256_bound:
      pair !== undefined &&
      typeof resultHash === "string" &&
      resultHash === pair.gate.stage355_binding.stage355_result_sha256,
    stage355_checks_rederived:
      receiptChecks !== undefined && STAGE356_CHECK_KEYS.every((key) => derivedChecks[key] === receiptChecks[key]),
  };
}

function allTrue(members: Record<string, unknown>, keys: readonly string[]): boolean {
  return sameStrings(Object.keys(members).sort(), [...keys].sort()) && keys.every((key) => members[key] === true);
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** Only ever a 64-hex string, so nothing else from an unverified file reaches the outputs. */
function declaredHash(document: PlainJsonObject | undefined, key: string): string | null {
  const value = document?.[key];
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value) ? value : null;
}
