import { ControlPlaneError } from "../core/errors.js";
import type { RunState } from "../core/run/schema.js";
import {
  type RunChange,
  type RunCheckDepth,
  type RunHead,
  type RunKey,
  type RunSession,
  type RunStateStore,
  type RunStoreCheck,
  type RunStoreVerifier,
  runKeyText,
  StaleRunVersionError,
  type StoredReceipt,
} from "../core/run/store.js";
import {
  type ChainedRecord,
  chainRecords,
  duplicateTriggerError,
  encodeAppended,
  genesisHash,
  type KeyedKind,
  type RecordKind,
  triggerListEntries,
  zeroCounts,
} from "./run-log/records.js";
import { VerifiedRunSession } from "./run-log/session.js";
import {
  type KnownTail,
  type RunLogSource,
  type StoredRecord,
  storedForm,
  VerifiedRunLog,
  verifyEachRun,
  verifyToDepth,
} from "./run-log/verified-log.js";

/** One run as the memory store keeps it: the head, and the records in their stored form with lookup maps. */
interface MemoryRun {
  key: RunKey;
  head: RunHead;
  chainTip: string;
  tail?: KnownTail;
  records: StoredRecord[];
  /** Positions by kind, in seq order. */
  positionsOf: Map<string, number[]>;
  /** The lookup index: the position of the first trigger or decision naming a trigger id. */
  byTrigger: Map<string, number>;
  /** The trigger list, kept apart from the index: the seq of that record. */
  listed: Map<string, number>;
  packetsByDecision: Map<string, number[]>;
  submissionsById: Map<string, number[]>;
  receipts: StoredReceipt[];
}

/**
 * A run-state store held in process memory (`[run_state_store] type = "memory"`): gone when the process exits.
 * Records are kept as their canonical bytes in the same chained form as in a database, and read back through the
 * same verification, so callers can never alias stored state and both backends keep one contract.
 */
export class MemoryRunStateStore implements RunStateStore, RunStoreVerifier {
  private readonly runs = new Map<string, MemoryRun>();

  async create(state: RunState, receipts: StoredReceipt[] = []): Promise<void> {
    const key = runKeyText(state);
    if (this.runs.has(key)) throw new ControlPlaneError("run_exists", `run already exists: ${state.run_id}`);
    const chained = chainRecords(zeroCounts(), genesisHash(state), encodeAppended(state), state);
    const { tenant_id, namespace_id, run_id, scenario_id, spec_hash, dispatch_targets } = state;
    const { current_stage_id, stage_entered_at, status } = state;
    const identity = { tenant_id, namespace_id, run_id, scenario_id, spec_hash, dispatch_targets };
    const run: MemoryRun = {
      key: { tenant_id, namespace_id, run_id },
      head: structuredClone({
        ...identity,
        current_stage_id,
        stage_entered_at,
        status,
        counts: zeroCounts(),
        version: 0,
      }),
      chainTip: genesisHash(state),
      records: [],
      positionsOf: new Map(),
      byTrigger: new Map(),
      listed: new Map(),
      packetsByDecision: new Map(),
      submissionsById: new Map(),
      receipts: structuredClone(receipts),
    };
    append(run, chained);
    this.runs.set(key, run);
  }

  async open(key: RunKey): Promise<RunSession | undefined> {
    const run = this.runs.get(runKeyText(key));
    if (run === undefined) return undefined;
    const log = verifiedLog(run);
    run.tail = log.verifyTail(run.tail);
    return new VerifiedRunSession(structuredClone(run.head), log, {
      last: () => structuredClone(run.receipts.at(-1)),
      ofDecision: (decisionId) => structuredClone(run.receipts.find((receipt) => receipt.decision_id === decisionId)),
    });
  }

  async commit(key: RunKey, expectedVersion: number, change: RunChange): Promise<void> {
    const run = this.runs.get(runKeyText(key));
    if (run === undefined || run.head.version !== expectedVersion) throw new StaleRunVersionError(key);
    const chained = chainRecords(run.head.counts, run.chainTip, encodeAppended(change.appended), key);
    append(run, chained);
    run.head.current_stage_id = change.current_stage_id;
    run.head.stage_entered_at = structuredClone(change.stage_entered_at);
    run.head.status = change.status;
    run.head.version++;
    run.receipts.push(...structuredClone(change.receipts ?? []));
  }

  async load(key: RunKey): Promise<RunState | undefined> {
    const run = this.runs.get(runKeyText(key));
    if (run === undefined) return undefined;
    const { counts: _counts, version: _version, ...head } = structuredClone(run.head);
    return { ...head, ...verifiedLog(run).loadAll() };
  }

  async loadReceipts(key: RunKey): Promise<StoredReceipt[]> {
    return structuredClone(this.runs.get(runKeyText(key))?.receipts ?? []);
  }

  async verifyRuns(depth: RunCheckDepth, progress?: (checked: number, total: number) => void): Promise<RunStoreCheck> {
    const verifyOne = (key: RunKey) => {
      const run = this.runs.get(runKeyText(key));
      return run === undefined ? 0 : verifyToDepth(verifiedLog(run), depth);
    };
    return verifyEachRun(
      [...this.runs.values()].map((run) => run.key),
      verifyOne,
      progress,
    );
  }

  async ready(): Promise<boolean> {
    return true;
  }
}

function verifiedLog(run: MemoryRun): VerifiedRunLog {
  return new VerifiedRunLog(new MemoryRunLogSource(run), run.key, { counts: run.head.counts, chainTip: run.chainTip });
}

/** Appends chained records, all or nothing: a second trigger or decision for a listed trigger id is refused. */
function append(run: MemoryRun, chained: ReturnType<typeof chainRecords>): void {
  const entries = triggerListEntries(chained.records);
  const fresh = new Set<string>();
  for (const entry of entries) {
    const listKey = triggerKey(entry.kind, entry.trigger_id);
    if (run.listed.has(listKey) || fresh.has(listKey)) throw duplicateTriggerError(run.key, entry);
    fresh.add(listKey);
  }
  for (const record of chained.records) index(run, record);
  for (const entry of entries) run.listed.set(triggerKey(entry.kind, entry.trigger_id), entry.seq);
  run.head.counts = chained.counts;
  run.chainTip = chained.chainTip;
  const last = chained.records.at(-1);
  if (last !== undefined) run.tail = { chainTip: chained.chainTip, row: storedForm(last) };
}

function index(run: MemoryRun, record: ChainedRecord): void {
  run.records.push(storedForm(record));
  const push = (map: Map<string, number[]>, key: string) => {
    const positions = map.get(key);
    if (positions === undefined) map.set(key, [record.position]);
    else positions.push(record.position);
  };
  push(run.positionsOf, record.kind);
  if ((record.kind === "trigger" || record.kind === "decision") && record.trigger_id !== null) {
    const key = triggerKey(record.kind, record.trigger_id);
    if (!run.byTrigger.has(key)) run.byTrigger.set(key, record.position);
  }
  if (record.kind === "packet" && record.decision_id !== null) push(run.packetsByDecision, record.decision_id);
  if (record.kind === "submission" && record.submission_id !== null) push(run.submissionsById, record.submission_id);
}

function triggerKey(kind: KeyedKind, triggerId: string): string {
  return `${kind}\n${triggerId}`;
}

/** The raw rows of one memory run, for `VerifiedRunLog`. */
class MemoryRunLogSource implements RunLogSource {
  constructor(private readonly run: MemoryRun) {}

  atPosition(position: number) {
    return this.run.records[position - 1];
  }

  prevHashAt(position: number) {
    return this.atPosition(position)?.prev_hash;
  }

  bySeq(kind: RecordKind, seq: number) {
    const position = this.run.positionsOf.get(kind)?.[seq - 1];
    return position === undefined ? undefined : this.atPosition(position);
  }

  firstByTrigger(kind: KeyedKind, triggerId: string, maxSeq: number) {
    const position = this.run.byTrigger.get(triggerKey(kind, triggerId));
    const row = position === undefined ? undefined : this.atPosition(position);
    return row !== undefined && row.seq <= maxSeq ? row : undefined;
  }

  listedTrigger(kind: KeyedKind, triggerId: string) {
    return this.run.listed.get(triggerKey(kind, triggerId));
  }

  packetsOf(decisionId: string, maxSeq: number) {
    return this.rows(this.run.packetsByDecision.get(decisionId), maxSeq);
  }

  lastSubmission(submissionId: string, maxSeq: number) {
    return this.rows(this.run.submissionsById.get(submissionId), maxSeq).at(-1);
  }

  upToSeq(kind: RecordKind, maxSeq: number) {
    return this.rows(this.run.positionsOf.get(kind)?.slice(0, maxSeq), maxSeq);
  }

  wholeLog() {
    return [...this.run.records];
  }

  triggerList() {
    return [...this.run.listed].map(([key, seq]) => {
      const [kind = "", ...rest] = key.split("\n");
      return { kind, trigger_id: rest.join("\n"), seq };
    });
  }

  private rows(positions: number[] | undefined, maxSeq: number): StoredRecord[] {
    const rows = (positions ?? []).map((position) => this.run.records[position - 1] as StoredRecord);
    return rows.filter((row) => row.seq <= maxSeq);
  }
}
