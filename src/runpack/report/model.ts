import { evaluateRequirement } from "../../core/logic/evaluate.js";
import type {
  DecisionRecord,
  EvidenceRecord,
  GateEvalRecord,
  SubmissionRecord,
  TriggerRecord,
} from "../../core/run/schema.js";
import type { AttestationInspection } from "../../core/runpack/attestation.js";
import type { ConditionSpec, Requirement, ScenarioSpec } from "../../core/spec/schema.js";
import type { Timestamp, TriState } from "../../core/wire/common.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import type { LoadedRunpack, SignatureStatus } from "./load.js";

/*
 * The report's view of a runpack: plain strings and tri-states, ready to render. Pure: it only rearranges what
 * the loader read. It never includes submission or trigger payloads. It shows every evidence value the run
 * recorded: by default the server records all of them, as the reference does (its disclosure policy governs only
 * what callers are shown), so a runpack is as sensitive as its evidence; under `[evidence] record_raw_values =
 * false` a withheld value was recorded as null and reads "not recorded".
 */

/** Longest JSON text shown for an expected or evidence value; longer text is cut with a note of its length. */
const MAX_VALUE_CHARS = 240;

export interface ReportModel {
  verification: {
    status: "pass" | "fail";
    checkedFiles: string;
    errors: string[];
    signature: SignatureStatus;
    attestation: AttestationInspection | null;
    unreadable: string[];
  };
  /** Scenario and run, for the page title; null when the manifest could not be read. */
  subject: { scenarioId: string; runId: string } | null;
  identity: Array<[label: string, value: string]>;
  rootHash: string | null;
  counts: Array<[label: string, count: number]>;
  timeline: TimelineEntry[];
  submissions: SubmissionView[];
}

export interface TimelineEntry {
  /** Anchor id linking a timeline row to its gate trees. */
  anchor: string;
  seq: string;
  triggerId: string;
  time: string;
  kind: string;
  source: string;
  gates: GateView[];
  decision: DecisionView | null;
  receipt: ReceiptView | null;
}

export interface DecisionView {
  decisionId: string;
  seq: string;
  stageId: string;
  outcome: string;
  summary: string;
  decidedAt: string;
}

export interface ReceiptView {
  action: string;
  runtimeDecision: string;
  allowed: string[];
  isolated: string[];
  reasons: string[];
  receiptSha256: string;
}

export interface GateView {
  stageId: string;
  gateId: string;
  status: TriState;
  /** Null when the spec has no such gate: the tree cannot be shown, only the recorded conditions. */
  tree: TreeNode | null;
  conditions: ConditionView[];
}

export type TreeNode =
  | { kind: "condition"; status: TriState; condition: ConditionView }
  | { kind: "all" | "any" | "not"; status: TriState; children: TreeNode[] }
  | { kind: "at_least"; min: string; status: TriState; children: TreeNode[] };

export interface ConditionView {
  conditionId: string;
  status: TriState;
  query: string;
  comparator: string;
  expected: string;
  evidence: EvidenceView | null;
}

export interface EvidenceView {
  lane: string;
  hash: string | null;
  anchor: string | null;
  signature: string | null;
  value: string;
  error: string | null;
}

export interface SubmissionView {
  submissionId: string;
  submittedAt: string;
  contentType: string;
  contentHash: string;
}

export function buildReportModel(loaded: LoadedRunpack): ReportModel {
  const { manifest, logs } = loaded;
  return {
    verification: {
      status: loaded.verification.status,
      checkedFiles: loaded.verification.checked_files.toString(),
      errors: loaded.verification.errors,
      signature: loaded.signature,
      attestation: loaded.attestation,
      unreadable: loaded.unreadable,
    },
    subject: manifest === null ? null : { scenarioId: manifest.scenario_id, runId: manifest.run_id },
    identity:
      manifest === null
        ? [["Manifest", loaded.manifestPath]]
        : [
            ["Scenario", manifest.scenario_id],
            ["Run", manifest.run_id],
            ["Tenant / namespace", `${manifest.tenant_id} / ${manifest.namespace_id}`],
            ["Generated", formatTime(manifest.generated_at)],
            ["Spec hash", `${manifest.spec_hash.algorithm}:${manifest.spec_hash.value}`],
            ["Manifest", `${loaded.manifestPath} (${manifest.manifest_version}, ${manifest.verifier_mode})`],
          ],
    rootHash:
      manifest === null ? null : `${manifest.integrity.root_hash.algorithm}:${manifest.integrity.root_hash.value}`,
    counts: [
      ["Triggers", logs.triggers?.length ?? 0],
      ["Gate evaluations", logs.gateEvals?.length ?? 0],
      ["Decisions", logs.decisions?.length ?? 0],
      ["Action receipts", logs.receipts?.length ?? 0],
      ["Packets", logs.packets?.length ?? 0],
      ["Submissions", logs.submissions?.length ?? 0],
    ],
    timeline: buildTimeline(loaded),
    submissions: (logs.submissions ?? []).map(submissionView),
  };
}

/** One entry per trigger in log order, then one per decision whose trigger the log lacks. */
function buildTimeline({ logs }: LoadedRunpack): TimelineEntry[] {
  const conditions = new Map((logs.spec?.conditions ?? []).map((condition) => [condition.condition_id, condition]));
  const evalsByTrigger = groupBy(logs.gateEvals ?? [], (record) => record.trigger_id);
  const decisionsByTrigger = new Map((logs.decisions ?? []).map((decision) => [decision.trigger_id, decision]));
  const receiptsByDecision = new Map(
    (logs.receipts ?? []).filter(isJsonObject).map((receipt) => [String(receipt.decision_id), receipt]),
  );
  const entry = (triggerId: string, trigger: TriggerRecord | undefined, index: number): TimelineEntry => {
    const decision = decisionsByTrigger.get(triggerId);
    const receipt = decision === undefined ? undefined : receiptsByDecision.get(decision.decision_id);
    return {
      anchor: `entry-${index + 1}`,
      seq: trigger?.seq.toString() ?? "",
      triggerId,
      time: trigger === undefined ? "" : formatTime(trigger.event.time),
      kind: trigger?.event.kind ?? "not in the trigger log",
      source: trigger?.event.source_id ?? "",
      gates: (evalsByTrigger.get(triggerId) ?? []).map((record) => gateView(record, logs.spec, conditions)),
      decision: decision === undefined ? null : decisionView(decision),
      receipt: receipt === undefined ? null : receiptView(receipt),
    };
  };
  const triggers = logs.triggers ?? [];
  const logged = new Set(triggers.map((trigger) => trigger.event.trigger_id));
  const unlogged = (logs.decisions ?? []).filter((decision) => !logged.has(decision.trigger_id));
  return [
    ...triggers.map((trigger) => [trigger.event.trigger_id, trigger] as const),
    ...unlogged.map((decision) => [decision.trigger_id, undefined] as const),
  ].map(([triggerId, trigger], index) => entry(triggerId, trigger, index));
}

function gateView(
  record: GateEvalRecord,
  spec: ScenarioSpec | undefined,
  conditions: ReadonlyMap<string, ConditionSpec>,
): GateView {
  const { evaluation } = record;
  const evidence = new Map(record.evidence.map((item) => [item.condition_id, item]));
  const traced = new Map(evaluation.trace.map((entry) => [entry.condition_id, entry.status]));
  const statusOf = (conditionId: string): TriState =>
    evidence.get(conditionId)?.status ?? traced.get(conditionId) ?? "Unknown";
  const condition = (conditionId: string) =>
    conditionView(conditionId, statusOf(conditionId), conditions.get(conditionId), evidence.get(conditionId));
  const gate = spec?.stages
    .find((stage) => stage.stage_id === record.stage_id)
    ?.gates.find((candidate) => candidate.gate_id === evaluation.gate_id);
  const recorded = [...new Set([...traced.keys(), ...evidence.keys()])];
  return {
    stageId: record.stage_id,
    gateId: evaluation.gate_id,
    status: evaluation.status,
    tree: gate === undefined ? null : treeNode(gate.requirement, statusOf, condition),
    conditions: gate === undefined ? recorded.map(condition) : [],
  };
}

/** The requirement tree with each node's tri-state recomputed from the recorded condition statuses. */
function treeNode(
  requirement: Requirement,
  statusOf: (conditionId: string) => TriState,
  condition: (conditionId: string) => ConditionView,
): TreeNode {
  const status = evaluateRequirement(requirement, statusOf).status;
  const child = (node: Requirement) => treeNode(node, statusOf, condition);
  if ("Condition" in requirement) return { kind: "condition", status, condition: condition(requirement.Condition) };
  if ("Not" in requirement) return { kind: "not", status, children: [child(requirement.Not)] };
  if ("And" in requirement) return { kind: "all", status, children: requirement.And.map(child) };
  if ("Or" in requirement) return { kind: "any", status, children: requirement.Or.map(child) };
  const { min, reqs } = requirement.RequireGroup;
  return { kind: "at_least", min: min.toString(), status, children: reqs.map(child) };
}

function conditionView(
  conditionId: string,
  status: TriState,
  spec: ConditionSpec | undefined,
  record: EvidenceRecord | undefined,
): ConditionView {
  return {
    conditionId,
    status,
    query: spec === undefined ? "not in the spec" : `${spec.query.provider_id}.${spec.query.check_id}`,
    comparator: spec?.comparator ?? "",
    expected: spec === undefined || spec.expected === null ? "(none)" : shortJson(spec.expected),
    evidence: record === undefined ? null : evidenceView(record),
  };
}

function evidenceView({ result }: EvidenceRecord): EvidenceView {
  const { value } = result;
  return {
    lane: result.lane,
    hash: result.evidence_hash === null ? null : `${result.evidence_hash.algorithm}:${result.evidence_hash.value}`,
    anchor:
      result.evidence_anchor === null
        ? null
        : `${result.evidence_anchor.anchor_type} = ${result.evidence_anchor.anchor_value}`,
    signature: result.signature === null ? null : `${result.signature.scheme}, key ${result.signature.key_id}`,
    value:
      value === null
        ? "not recorded"
        : value.kind === "bytes"
          ? `${value.value.length} bytes`
          : shortJson(value.value as JsonValue),
    error: result.error === null ? null : `${result.error.code}: ${result.error.message}`,
  };
}

function decisionView(decision: DecisionRecord): DecisionView {
  const { outcome } = decision;
  const summary =
    outcome.kind === "start" || outcome.kind === "complete"
      ? `stage ${outcome.stage_id}`
      : outcome.kind === "advance"
        ? `${outcome.from_stage} → ${outcome.to_stage}${outcome.timeout ? " (timeout)" : ""}`
        : outcome.kind === "hold"
          ? `unmet gates: ${outcome.summary.unmet_gates.join(", ")}`
          : outcome.reason;
  return {
    decisionId: decision.decision_id,
    seq: decision.seq.toString(),
    stageId: decision.stage_id,
    outcome: outcome.kind,
    summary,
    decidedAt: formatTime(decision.decided_at),
  };
}

function receiptView(receipt: JsonObject): ReceiptView {
  const capabilities = isJsonObject(receipt.capabilities) ? receipt.capabilities : {};
  return {
    action: String(receipt.action ?? ""),
    runtimeDecision: String(receipt.runtime_decision ?? ""),
    allowed: strings(capabilities.allowed),
    isolated: strings(capabilities.isolated),
    reasons: strings(receipt.reasons),
    receiptSha256: String(receipt.receipt_sha256 ?? ""),
  };
}

function submissionView(submission: SubmissionRecord): SubmissionView {
  return {
    submissionId: submission.submission_id,
    submittedAt: formatTime(submission.submitted_at),
    contentType: submission.content_type,
    contentHash: `${submission.content_hash.algorithm}:${submission.content_hash.value}`,
  };
}

function formatTime(time: Timestamp): string {
  if (time.kind === "logical") return `logical ${time.value}`;
  const millis = Number(time.value);
  const date = new Date(millis);
  return Number.isNaN(date.getTime()) ? `unix_millis ${time.value}` : `${date.toISOString()} (${time.value} ms)`;
}

function shortJson(value: JsonValue): string {
  const text = canonicalJson(value);
  return text.length <= MAX_VALUE_CHARS ? text : `${text.slice(0, MAX_VALUE_CHARS)}… (${text.length} characters)`;
}

function strings(value: JsonValue | undefined): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group === undefined) groups.set(key(item), [item]);
    else group.push(item);
  }
  return groups;
}
