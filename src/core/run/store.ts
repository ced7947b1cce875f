import type { z } from "zod";
import type { JsonObject } from "../../json/value.js";
import { DecisionGateError } from "../errors.js";
import type { HashDigest, Timestamp } from "../wire/common.js";
import {
  DecisionRecord,
  type DispatchTarget,
  GateEvalRecord,
  PacketRecord,
  type RunState,
  type RunStatus,
  SubmissionRecord,
  ToolCallRecord,
  type TriggerEvent,
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

/** The ids a record is looked up by: what the lookups of a `RunSession` find it through. */
export interface RecordIds {
  trigger_id?: string;
  decision_id?: string;
  submission_id?: string;
}

interface RecordKindSpec<R> {
  log: string;
  schema: z.ZodType<R, unknown>;
  ids(record: R): RecordIds;
  seq?(record: R): bigint;
  onePerTrigger?: true;
}

/*
 * The six kinds of record a run holds, one row each, in the order a commit appends them. Everything else that
 * depends on the kinds is derived from this table: `LogCounts`, `AppendedRecords`, and in the stores their
 * encoding, counts, columns, lookups and checks (src/store/run-log/). Per kind:
 * - `log`: the name of its log in `RunState`, `LogCounts` and `AppendedRecords`;
 * - `schema`: the record's schema, which a stored record must decode with;
 * - `ids`: the ids the record is looked up by;
 * - `seq`: the seq the record carries itself (its 1-based place in its log), when it carries one;
 * - `onePerTrigger`: a run holds at most one record of the kind per trigger id (the idempotency keys of a trigger).
 */
const RECORD_KIND_TABLE = {
  trigger: {
    log: "triggers",
    schema: TriggerRecord,
    ids: (record: TriggerRecord) => ({ trigger_id: record.event.trigger_id }),
    seq: (record: TriggerRecord) => record.seq,
    onePerTrigger: true,
  },
  gate_eval: {
    log: "gate_evals",
    schema: GateEvalRecord,
    ids: (record: GateEvalRecord) => ({ trigger_id: record.trigger_id }),
  },
  decision: {
    log: "decisions",
    schema: DecisionRecord,
    ids: (record: DecisionRecord) => ({ trigger_id: record.trigger_id, decision_id: record.decision_id }),
    seq: (record: DecisionRecord) => record.seq,
    onePerTrigger: true,
  },
  packet: {
    log: "packets",
    schema: PacketRecord,
    ids: (record: PacketRecord) => ({ decision_id: record.decision_id }),
  },
  submission: {
    log: "submissions",
    schema: SubmissionRecord,
    ids: (record: SubmissionRecord) => ({ submission_id: record.submission_id }),
  },
  tool_call: {
    log: "tool_calls",
    schema: ToolCallRecord,
    ids: (_record: ToolCallRecord) => ({}),
  },
} as const;

type KindTable = typeof RECORD_KIND_TABLE;
export type RecordKind = keyof KindTable;
export type RecordOf<K extends RecordKind> = z.output<KindTable[K]["schema"]>;
export type LogName = KindTable[RecordKind]["log"];
/** Kinds whose trigger ids are idempotency keys (`onePerTrigger`). */
export type OnePerTriggerKind = {
  [K in RecordKind]: KindTable[K] extends { onePerTrigger: true } ? K : never;
}[RecordKind];

/** The table of record kinds, typed so that a row can be used with the record type of its own kind. */
export const RECORD_KINDS: { [K in RecordKind]: RecordKindSpec<RecordOf<K>> & { log: KindTable[K]["log"] } } =
  RECORD_KIND_TABLE;

/** Record kinds in the order a commit appends them (the table's order). */
export const RECORD_KIND_ORDER = Object.keys(RECORD_KINDS) as RecordKind[];

/** How many records each log of a run holds. */
export type LogCounts = Record<LogName, number>;

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

/** What a call will look up in a run right after opening it. */
export interface RunLookahead {
  /** The trigger id whose decision the call looks up (`RunSession.decisionForTrigger`). */
  decisionOf?: string;
}

/** Records appended to each log of a run. */
export type AppendedRecords = { [K in RecordKind as KindTable[K]["log"]]: RecordOf<K>[] };

/** The log of `kind` in `records`, typed by the kind. */
export function logOf<K extends RecordKind>(records: AppendedRecords, kind: K): RecordOf<K>[] {
  return records[RECORD_KINDS[kind].log] as RecordOf<K>[];
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
  /**
   * Opens a read view, or `undefined` when the run does not exist. `lookahead` names what the call will look up
   * first, which a store whose reads cross a network may read together with the head.
   */
  open(key: RunKey, lookahead?: RunLookahead): Promise<RunSession | undefined>;
  /** Applies `change` atomically if the run is still at `expectedVersion`, else throws `StaleRunVersionError`. */
  commit(key: RunKey, expectedVersion: number, change: RunChange): Promise<void>;
  /**
   * Runs `work`, a step that lost a commit race to another process, while no other process can commit to the run;
   * commits `work` makes go through. Without it a process with a queue of calls on one run could win every race
   * until its queue drained. A store only one process writes runs `work` at once.
   */
  exclusive<T>(key: RunKey, work: () => Promise<T>): Promise<T>;
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
  return Object.fromEntries(RECORD_KIND_ORDER.map((kind) => [RECORD_KINDS[kind].log, []])) as Record<LogName, never[]>;
}
