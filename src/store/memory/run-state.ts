import { ControlPlaneError } from "../../core/errors.js";
import {
  type OnePerTriggerKind,
  type RecordKind,
  type RunKey,
  runKeyText,
  type StoredReceipt,
} from "../../core/run/store.js";
import {
  type FoundRun,
  type PlannedAppend,
  type RunBackend,
  type RunLogSource,
  type RunReceipts,
  type RunRows,
  type RunSnapshot,
  type StoredRecord,
  type StoredTriggerEntry,
  storedForm,
} from "../run-log/backend.js";
import type { StoredHead } from "../run-log/head.js";
import { type ChainedRecord, duplicateTriggerError, isOnePerTrigger } from "../run-log/records.js";
import { ChainedRunStore } from "../run-log/run-store.js";

/** One run as the memory store keeps it: the head row, and the records in their stored form with lookup maps. */
interface MemoryRun {
  key: RunKey;
  head: StoredHead;
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
 * Runs held in process memory as the rows a database would hold: head rows with their checksum, records as their
 * canonical bytes in the same chained form, maps for indexes. Everything is read back through the same
 * verification as from a database, so callers can never alias stored state and every backend keeps one contract.
 */
class MemoryRunRows implements RunBackend<MemoryRun> {
  private readonly runs = new Map<string, MemoryRun>();

  async find(key: RunKey): Promise<FoundRun<MemoryRun> | undefined> {
    return this.found(key);
  }

  async keys(): Promise<RunKey[]> {
    return [...this.runs.values()].map((run) => run.key);
  }

  source(run: MemoryRun): RunLogSource {
    return new MemoryRunLogSource(run);
  }

  receipts(run: MemoryRun): RunReceipts {
    return {
      last: async () => structuredClone(run.receipts.at(-1)),
      ofDecision: async (decisionId) =>
        structuredClone(run.receipts.find((receipt) => receipt.decision_id === decisionId)),
      all: async () => structuredClone(run.receipts),
    };
  }

  /** Read at once: nothing changes in between. */
  async snapshot(key: RunKey): Promise<RunSnapshot<MemoryRun> | undefined> {
    const found = this.found(key);
    if (found === undefined) return undefined;
    return { ...found, log: [...found.ref.records], triggerList: triggerListOf(found.ref) };
  }

  async insert(key: RunKey, rows: RunRows): Promise<void> {
    const text = runKeyText(key);
    if (this.runs.has(text)) throw new ControlPlaneError("run_exists", `run already exists: ${key.run_id}`);
    const run: MemoryRun = {
      key: { tenant_id: key.tenant_id, namespace_id: key.namespace_id, run_id: key.run_id },
      head: rows.head,
      records: [],
      positionsOf: new Map(),
      byTrigger: new Map(),
      listed: new Map(),
      packetsByDecision: new Map(),
      submissionsById: new Map(),
      receipts: [],
    };
    write(run, rows);
    this.runs.set(text, run);
  }

  async append(key: RunKey, plan: (found: FoundRun<MemoryRun> | undefined) => PlannedAppend<MemoryRun>) {
    const { ref: run, rows } = plan(this.found(key));
    write(run, rows);
  }

  async ready(): Promise<boolean> {
    return true;
  }

  private found(key: RunKey): FoundRun<MemoryRun> | undefined {
    const run = this.runs.get(runKeyText(key));
    return run === undefined ? undefined : { ref: run, head: run.head };
  }
}

function triggerListOf(run: MemoryRun): StoredTriggerEntry[] {
  return [...run.listed].map(([key, seq]) => {
    const [kind = "", ...rest] = key.split("\n");
    return { kind, trigger_id: rest.join("\n"), seq };
  });
}

/** Writes rows all or nothing: a second trigger or decision for a listed trigger id is refused first. */
function write(run: MemoryRun, rows: RunRows): void {
  const fresh = new Set<string>();
  for (const entry of rows.listed) {
    const listKey = triggerKey(entry.kind, entry.trigger_id);
    if (run.listed.has(listKey) || fresh.has(listKey)) throw duplicateTriggerError(run.key, entry);
    fresh.add(listKey);
  }
  for (const record of rows.records) index(run, record);
  for (const entry of rows.listed) run.listed.set(triggerKey(entry.kind, entry.trigger_id), entry.seq);
  run.receipts.push(...structuredClone(rows.receipts));
  run.head = rows.head;
}

function index(run: MemoryRun, record: ChainedRecord): void {
  run.records.push(storedForm(record));
  const push = (map: Map<string, number[]>, key: string) => {
    const positions = map.get(key);
    if (positions === undefined) map.set(key, [record.position]);
    else positions.push(record.position);
  };
  push(run.positionsOf, record.kind);
  if (isOnePerTrigger(record.kind) && record.trigger_id !== null) {
    const key = triggerKey(record.kind, record.trigger_id);
    if (!run.byTrigger.has(key)) run.byTrigger.set(key, record.position);
  }
  if (record.kind === "packet" && record.decision_id !== null) push(run.packetsByDecision, record.decision_id);
  if (record.kind === "submission" && record.submission_id !== null) push(run.submissionsById, record.submission_id);
}

function triggerKey(kind: OnePerTriggerKind, triggerId: string): string {
  return `${kind}\n${triggerId}`;
}

/** The raw rows of one memory run, for `VerifiedRunLog`. */
class MemoryRunLogSource implements RunLogSource {
  constructor(private readonly run: MemoryRun) {}

  async atPosition(position: number) {
    return this.at(position);
  }

  async prevHashAt(position: number) {
    return this.at(position)?.prev_hash;
  }

  async bySeq(kind: RecordKind, seq: number) {
    const position = this.run.positionsOf.get(kind)?.[seq - 1];
    return position === undefined ? undefined : this.at(position);
  }

  async firstByTrigger(kind: OnePerTriggerKind, triggerId: string, maxSeq: number) {
    const position = this.run.byTrigger.get(triggerKey(kind, triggerId));
    const row = position === undefined ? undefined : this.at(position);
    return row !== undefined && row.seq <= maxSeq ? row : undefined;
  }

  async listedTrigger(kind: OnePerTriggerKind, triggerId: string) {
    return this.run.listed.get(triggerKey(kind, triggerId));
  }

  async packetsOf(decisionId: string, maxSeq: number) {
    return this.rows(this.run.packetsByDecision.get(decisionId), maxSeq);
  }

  async lastSubmission(submissionId: string, maxSeq: number) {
    return this.rows(this.run.submissionsById.get(submissionId), maxSeq).at(-1);
  }

  async upToSeq(kind: RecordKind, maxSeq: number) {
    return this.rows(this.run.positionsOf.get(kind)?.slice(0, maxSeq), maxSeq);
  }

  private at(position: number): StoredRecord | undefined {
    return this.run.records[position - 1];
  }

  private rows(positions: number[] | undefined, maxSeq: number): StoredRecord[] {
    const rows = (positions ?? []).map((position) => this.run.records[position - 1] as StoredRecord);
    return rows.filter((row) => row.seq <= maxSeq);
  }
}

/** A run-state store held in process memory (`[run_state_store] type = "memory"`): gone when the process exits. */
export class MemoryRunStateStore extends ChainedRunStore<MemoryRun> {
  constructor() {
    super(new MemoryRunRows());
  }
}
