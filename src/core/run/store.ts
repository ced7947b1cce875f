import type { JsonObject } from "../../json/value.js";
import { DecisionGateError } from "../errors.js";
import type { HashDigest, Timestamp } from "../wire/common.js";
import type {
  DecisionRecord,
  DispatchTarget,
  GateEvalRecord,
  PacketRecord,
  RunState,
  RunStatus,
  SubmissionRecord,
  ToolCallRecord,
  TriggerEvent,
  TriggerRecord,
} from "./schema.js";

/*
 * The contract between the control plane and a run-state store.
 *
 * A run is a small mutable head plus six append-only logs. The control plane never rewrites history: each
 * call reads what it needs through a `RunSession` (indexed lookups, no full load) and commits a `RunChange`
 * of appended records with the head version it read. A store rejects a commit whose version is stale, so
 * concurrent writers (other processes on the same database included) can never fork a run; the control
 * plane then retries on fresh state. This keeps the cost of a trigger independent of the run's length.
 *
 * What a session reads back is untrusted: every backend serves records only after checking them in themselves
 * and in their run's hash chain, and answers a trigger-id lookup only when two independent lookups agree, so
 * damage fails closed instead of being acted on (src/store/run-log/).
 */

export interface RunKey {
  tenant_id: bigint;
  namespace_id: bigint;
  run_id: string;
}

export function runKeyText(key: RunKey): string {
  return `${key.tenant_id}/${key.namespace_id}/${key.run_id}`;
}

export interface LogCounts {
  triggers: number;
  gate_evals: number;
  decisions: number;
  packets: number;
  submissions: number;
  tool_calls: number;
}

export interface RunHead extends RunKey {
  scenario_id: string;
  spec_hash: HashDigest;
  current_stage_id: string;
  stage_entered_at: Timestamp;
  status: RunStatus;
  dispatch_targets: DispatchTarget[];
  counts: LogCounts;
  /** Increases by one with every commit. */
  version: number;
}

/** A consistent read view of one run at `head.version`. */
export interface RunSession {
  readonly head: RunHead;
  decisionForTrigger(triggerId: string): Promise<DecisionRecord | undefined>;
  triggerEvent(triggerId: string): Promise<TriggerEvent | undefined>;
  lastDecision(): Promise<DecisionRecord | undefined>;
  packetsOfDecision(decisionId: string): Promise<PacketRecord[]>;
  submission(submissionId: string): Promise<SubmissionRecord | undefined>;
  issuedPacketIds(): Promise<string[]>;
  lastReceipt(): Promise<StoredReceipt | undefined>;
  receiptOfDecision(decisionId: string): Promise<StoredReceipt | undefined>;
}

export interface AppendedRecords {
  triggers: TriggerRecord[];
  gate_evals: GateEvalRecord[];
  decisions: DecisionRecord[];
  packets: PacketRecord[];
  submissions: SubmissionRecord[];
  tool_calls: ToolCallRecord[];
}

export interface RunChange {
  current_stage_id: string;
  stage_entered_at: Timestamp;
  status: RunStatus;
  appended: AppendedRecords;
  /** Action receipts issued with this change's decisions, committed with them and kept beside the run's logs. */
  receipts?: StoredReceipt[];
}

/**
 * An action receipt as stores keep it: an opaque, canonically hashable object naming the decision it is bound to.
 * Receipts are not part of the reference's `RunState`, so they never change its logs or their hashes.
 */
export type StoredReceipt = JsonObject & { decision_id: string; receipt_sha256: string };

export interface RunStateStore {
  /** Stores a new run (and the receipts of its start decision); fails with `run_exists` when the key is taken. */
  create(state: RunState, receipts?: StoredReceipt[]): Promise<void>;
  /** Opens a read view, or `undefined` when the run does not exist. */
  open(key: RunKey): Promise<RunSession | undefined>;
  /** Applies `change` atomically if the run is still at `expectedVersion`, else throws `StaleRunVersionError`. */
  commit(key: RunKey, expectedVersion: number, change: RunChange): Promise<void>;
  /** Assembles the full run state (for start results and runpacks). */
  load(key: RunKey): Promise<RunState | undefined>;
  /** The run's action receipts in issue order. */
  loadReceipts(key: RunKey): Promise<StoredReceipt[]>;
  /**
   * Whether the store can serve requests: false from a commit that failed for a storage reason (disk full,
   * read-only file, I/O error) until a commit succeeds again.
   */
  ready(): Promise<boolean>;
}

/** A store that can verify every run it holds (`decision-gate store check` and the startup check). */
export interface RunStoreVerifier {
  /**
   * Verifies stored runs, reporting damage instead of throwing it: `full` checks every record, the whole chain and
   * every lookup path of every run; `tail` each run's head and newest record, as opening the run would.
   */
  verifyRuns(depth: RunCheckDepth, progress?: (checked: number, total: number) => void): Promise<RunStoreCheck>;
}

export type RunCheckDepth = "full" | "tail";

export interface RunStoreCheck {
  runs: number;
  /** Records verified one by one (`full`), or newest records checked (`tail`). */
  records: number;
  /** One line per damaged run, naming it; empty when every run checked out. */
  problems: string[];
}

export class StaleRunVersionError extends DecisionGateError {
  constructor(key: RunKey) {
    super("control_plane", "run_version_conflict", `run was modified concurrently: ${key.run_id}`);
  }
}

export function emptyAppendedRecords(): AppendedRecords {
  return { triggers: [], gate_evals: [], decisions: [], packets: [], submissions: [], tool_calls: [] };
}

export function countsOf(state: RunState): LogCounts {
  return {
    triggers: state.triggers.length,
    gate_evals: state.gate_evals.length,
    decisions: state.decisions.length,
    packets: state.packets.length,
    submissions: state.submissions.length,
    tool_calls: state.tool_calls.length,
  };
}
