import { InvalidInputError } from "../core/errors.js";
import {
  actionFor,
  capabilitiesFor,
  DEFAULT_CAPABILITIES,
  RUNTIME_DECISIONS,
  type RuntimeAction,
  type RuntimeDecision,
} from "./capabilities.js";
import {
  type PlainJsonObject,
  prettyJson,
  SORTED_JSON_CANONICALIZATION,
  sortedJsonSha256Without,
} from "./sorted-json.js";
import { type Stage356Inputs, type Stage356Verification, TIMESTAMP_PATTERN } from "./stage356-format.js";

/*
 * The three Stage357 files (ecosystem §4.4 "Write"): the policy applied, the action receipt bound to the Stage356
 * receipt, and a text summary. Metadata only: hashes, check names, decision tokens and the paths the caller named.
 */

export const STAGE357_ENGINE = "Decision Gate Runtime Action Layer";

export const STAGE357_FILE_NAMES = {
  policy: "stage357_runtime_action_policy.json",
  receipt: "stage357_runtime_action_receipt.json",
  summary: "stage357_runtime_action_summary.txt",
} as const;

export type EnforcementMode = "enforce" | "report_only";

export type RuntimeActionReceipt = {
  stage: 357;
  engine: string;
  source_stage: 356;
  created_at: string;
  /** The Stage356 entry hash. */
  previous_hash: string | null;
  source_receipt_path: string;
  /** The Stage356 `receipt_sha256` as declared; `checks.receipt_sha256_valid` says whether it re-verified. */
  source_receipt_sha256: string | null;
  /** SHA-256 of the receipt file's raw bytes. */
  source_receipt_file_sha256: string | null;
  runtime_decision: RuntimeDecision;
  action: RuntimeAction;
  capabilities: { allowed: string[]; isolated: string[] };
  enforcement: { mode: EnforcementMode; exit_code: 0 | 1 };
  checks: Record<string, boolean>;
  violations: string[];
  reasons: string[];
  canonicalization: typeof SORTED_JSON_CANONICALIZATION;
  /** Over the receipt without `entry_hash` and `receipt_sha256`: the link a later stage binds as its previous hash. */
  entry_hash: string;
  /** Over the receipt without `receipt_sha256`. */
  receipt_sha256: string;
};

export type RuntimeActionPolicy = ReturnType<typeof runtimeActionPolicy>;

export interface Stage357Result {
  policy: RuntimeActionPolicy;
  receipt: RuntimeActionReceipt;
  summary: string;
}

const RECEIPT_HASH_EXCLUSIONS = { entry_hash: ["entry_hash", "receipt_sha256"], receipt_sha256: ["receipt_sha256"] };

export function buildStage357Result(
  verification: Stage356Verification,
  inputs: Pick<Stage356Inputs, "githubActions" | "enforce" | "createdAt" | "paths">,
): Stage357Result {
  if (!TIMESTAMP_PATTERN.test(inputs.createdAt)) {
    throw new InvalidInputError("created_at must have the form YYYY-MM-DDTHH:MM:SSZ");
  }
  const receipt = actionReceipt(verification, inputs);
  return {
    policy: runtimeActionPolicy(Object.keys(verification.checks)),
    receipt,
    summary: summaryText(receipt, verification, inputs.paths.gate),
  };
}

/** What the layer applies: the mapping, the capability sets, the fail-closed and enforcement rules, the checks. */
export function runtimeActionPolicy(checkNames: readonly string[]) {
  return {
    stage: 357,
    engine: STAGE357_ENGINE,
    source_stage: 356,
    canonicalization: SORTED_JSON_CANONICALIZATION,
    decision_actions: Object.fromEntries(RUNTIME_DECISIONS.map((decision) => [decision, actionFor(decision)])),
    capabilities: { isolated: [...DEFAULT_CAPABILITIES.isolated], allowed: [...DEFAULT_CAPABILITIES.allowed] },
    action_capabilities: Object.fromEntries(
      RUNTIME_DECISIONS.map((decision) => [actionFor(decision), capabilitiesFor(decision)]),
    ),
    fail_closed: {
      failed_check: "block",
      missing_or_unreadable_file: "block",
      parse_error: "block",
      hash_mismatch: "block",
      unknown_decision: "block",
      violations_without_block: "block",
    },
    enforcement: {
      enforce_when: ["--enforce", "GITHUB_ACTIONS=true"],
      enforce: { terminate_exit_code: 1, otherwise_exit_code: 0 },
      report_only: { exit_code: 0 },
    },
    verification_checks: [...checkNames],
  };
}

function actionReceipt(
  verification: Stage356Verification,
  inputs: Pick<Stage356Inputs, "githubActions" | "enforce" | "createdAt" | "paths">,
): RuntimeActionReceipt {
  const action = actionFor(verification.decision);
  const mode: EnforcementMode = inputs.enforce || inputs.githubActions ? "enforce" : "report_only";
  const body = {
    stage: 357 as const,
    engine: STAGE357_ENGINE,
    source_stage: 356 as const,
    created_at: inputs.createdAt,
    previous_hash: verification.stage356EntryHash,
    source_receipt_path: inputs.paths.receipt,
    source_receipt_sha256: verification.sourceReceiptSha256,
    source_receipt_file_sha256: verification.sourceReceiptFileSha256,
    runtime_decision: verification.decision,
    action,
    capabilities: capabilitiesFor(verification.decision),
    enforcement: { mode, exit_code: mode === "enforce" && action === "terminate" ? (1 as const) : (0 as const) },
    checks: verification.checks,
    violations: verification.violations,
    reasons: verification.reasons,
    canonicalization: SORTED_JSON_CANONICALIZATION,
  };
  const withEntryHash = { ...body, entry_hash: sortedJsonSha256Without(body, RECEIPT_HASH_EXCLUSIONS.entry_hash) };
  return {
    ...withEntryHash,
    receipt_sha256: sortedJsonSha256Without(withEntryHash, RECEIPT_HASH_EXCLUSIONS.receipt_sha256),
  };
}

/** Why an action receipt's own hashes do not hold (empty when they do). */
export function actionReceiptHashProblems(receipt: PlainJsonObject): string[] {
  return (["entry_hash", "receipt_sha256"] as const)
    .filter((key) => receipt[key] !== sortedJsonSha256Without(receipt, RECEIPT_HASH_EXCLUSIONS[key]))
    .map((key) => `${key} does not match the receipt`);
}

function summaryText(receipt: RuntimeActionReceipt, verification: Stage356Verification, gatePath: string): string {
  const checkNames = Object.keys(receipt.checks);
  const failed = checkNames.filter((name) => !receipt.checks[name]);
  return [
    "Stage357 Runtime Action Layer",
    "",
    "Runtime decision:",
    receipt.runtime_decision,
    "",
    "Action:",
    receipt.action,
    "",
    "Capabilities:",
    `- Allowed: ${listOrNone(receipt.capabilities.allowed)}`,
    `- Isolated: ${listOrNone(receipt.capabilities.isolated)}`,
    "",
    "Enforcement:",
    `- Mode: ${receipt.enforcement.mode}`,
    `- Exit code: ${receipt.enforcement.exit_code}`,
    "",
    "Stage356 inputs:",
    `- Receipt: ${receipt.source_receipt_path}`,
    `- Gate: ${gatePath}`,
    `- Declared receipt_sha256: ${receipt.source_receipt_sha256 ?? "none"}`,
    `- Receipt file sha256: ${receipt.source_receipt_file_sha256 ?? "none"}`,
    `- Stage356 entry hash (previous_hash): ${receipt.previous_hash ?? "none"}`,
    `- Stage355 chain checked: ${verification.deep ? "yes" : "no"}`,
    "",
    "Verification:",
    `- Checks passed: ${checkNames.length - failed.length}/${checkNames.length}`,
    `- Failed checks: ${listOrNone(failed)}`,
    "",
    "Reasons:",
    ...receipt.reasons.map((reason) => `- ${reason}`),
    "",
    "Action receipt:",
    `- Canonicalization: ${receipt.canonicalization}`,
    `- Entry hash: ${receipt.entry_hash}`,
    `- Receipt sha256: ${receipt.receipt_sha256}`,
    "",
    "Generated files:",
    ...Object.values(STAGE357_FILE_NAMES).map((name) => `- ${name}`),
    "",
  ].join("\n");
}

function listOrNone(items: readonly string[]): string {
  return items.length === 0 ? "none" : items.join(", ");
}

/** The files to write, by name, with their exact bytes. */
export function stage357Files(result: Stage357Result): Array<{ name: string; text: string }> {
  return [
    { name: STAGE357_FILE_NAMES.policy, text: prettyJson(result.policy) },
    { name: STAGE357_FILE_NAMES.receipt, text: prettyJson(result.receipt) },
    { name: STAGE357_FILE_NAMES.summary, text: result.summary },
  ];
}
