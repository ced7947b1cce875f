import type { z } from "zod";
import { ControlPlaneError, InternalError } from "../../core/errors.js";
import {
  DecisionRecord,
  DispatchTarget,
  GateEvalRecord,
  PacketRecord,
  type RunState,
  RunStatus,
  SubmissionRecord,
  ToolCallRecord,
  type TriggerEvent,
  TriggerRecord,
} from "../../core/run/schema.js";
import {
  type AppendedRecords,
  emptyAppendedRecords,
  type LogCounts,
  type RunChange,
  type RunHead,
  type RunKey,
  type RunSession,
  type RunStateStore,
  runKeyText,
  StaleRunVersionError,
  type StoredReceipt,
} from "../../core/run/store.js";
import { decode, HashDigest, Timestamp } from "../../core/wire/common.js";
import { sha256Hex } from "../../json/hash.js";
import { parseJson } from "../../json/parse.js";
import type { JsonValue } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import { decodeVerified, type SqliteDatabase, storeCorrupt } from "./database.js";
import { SqliteReceipts } from "./receipts.js";

/*
 * The SQLite run-state store: a run is one `runs` row (the head) plus its records in the append-only
 * `run_records` table. Records are canonical JSON with their sha256, chained per run: each row's `prev_hash`
 * is the link hash of the run's previous record, and the head keeps the link hash of the last one. A commit
 * is one `BEGIN IMMEDIATE` transaction that checks the head version, appends and bumps the version, so
 * writers on other connections or processes cannot fork a run. Every row read back is verified.
 */

/** The largest stored record (the reference's `MAX_STATE_BYTES`). */
export const MAX_STATE_BYTES = 16 * 1024 * 1024;

const LABEL = "run state store";

const KINDS = ["trigger", "gate_eval", "decision", "packet", "submission", "tool_call"] as const;
type RecordKind = (typeof KINDS)[number];
type LogName = keyof LogCounts;

interface RecordTypes {
  trigger: TriggerRecord;
  gate_eval: GateEvalRecord;
  decision: DecisionRecord;
  packet: PacketRecord;
  submission: SubmissionRecord;
  tool_call: ToolCallRecord;
}
type AnyRecord = RecordTypes[RecordKind];

/** Which log each kind belongs to, and the schema its stored records must decode with. */
const LOG_OF: { [K in RecordKind]: LogName } = {
  trigger: "triggers",
  gate_eval: "gate_evals",
  decision: "decisions",
  packet: "packets",
  submission: "submissions",
  tool_call: "tool_calls",
};
const SCHEMA_OF: { [K in RecordKind]: z.ZodType<RecordTypes[K], unknown> } = {
  trigger: TriggerRecord,
  gate_eval: GateEvalRecord,
  decision: DecisionRecord,
  packet: PacketRecord,
  submission: SubmissionRecord,
  tool_call: ToolCallRecord,
};

const DispatchTargets = DispatchTarget.array();

/** Indexed columns that sessions look records up by. */
interface Lookups {
  trigger_id: string | null;
  decision_id: string | null;
  submission_id: string | null;
}

interface HeadRow {
  run_pk: number;
  tenant_id: string;
  namespace_id: string;
  run_id: string;
  scenario_id: string;
  spec_hash: string;
  current_stage_id: string;
  stage_entered_at: string;
  status: string;
  dispatch_targets: string;
  triggers: number;
  gate_evals: number;
  decisions: number;
  packets: number;
  submissions: number;
  tool_calls: number;
  version: number;
  chain_tip: string;
  head_hash: string;
}
type HeadFields = Omit<HeadRow, "run_pk" | "head_hash">;

interface RecordRow extends Lookups {
  position: number;
  kind: string;
  seq: number;
  record_json: unknown;
  record_sha256: string;
  prev_hash: string;
}

/** A record encoded for storage, before it has a place in a run's log. */
interface EncodedRecord extends Lookups {
  kind: RecordKind;
  recordSeq: number | null;
  bytes: Buffer;
  sha256: string;
}

/** A record with its place in the log and its chain link, ready to insert. */
interface ChainedRecord extends EncodedRecord {
  position: number;
  seq: number;
  prevHash: string;
}

/**
 * The newest record of a run as this process last wrote or verified it, with the chain tip it ends. While a run's
 * head still names that tip, `open` compares the stored tail with it byte for byte instead of decoding and hashing
 * it again (a differing byte, column or link falls back to the full check, and so still fails closed).
 */
interface KnownTail {
  chainTip: string;
  position: number;
  kind: string;
  seq: number;
  lookups: Lookups;
  bytes: Uint8Array;
  sha256: string;
  prevHash: string;
}

/** Runs whose tails are remembered (each costs about one record's bytes). */
const KNOWN_TAILS = 4096;

const RECORD_COLUMNS =
  "position, kind, seq, trigger_id, decision_id, submission_id, record_json, record_sha256, prev_hash";

function prepareStatements(db: SqliteDatabase) {
  const records = (where: string) =>
    db.prepare<RecordRow>(`SELECT ${RECORD_COLUMNS} FROM run_records WHERE run_pk = ? ${where}`);
  return {
    head: db.prepare<HeadRow>("SELECT * FROM runs WHERE tenant_id = ? AND namespace_id = ? AND run_id = ?"),
    insertHead: db.prepare(
      `INSERT INTO runs (tenant_id, namespace_id, run_id, scenario_id, spec_hash, current_stage_id, stage_entered_at,
        status, dispatch_targets, triggers, gate_evals, decisions, packets, submissions, tool_calls, version, chain_tip,
        head_hash)
       VALUES (@tenant_id, @namespace_id, @run_id, @scenario_id, @spec_hash, @current_stage_id, @stage_entered_at,
        @status, @dispatch_targets, @triggers, @gate_evals, @decisions, @packets, @submissions, @tool_calls, @version,
        @chain_tip, @head_hash)`,
    ),
    updateHead: db.prepare(
      `UPDATE runs SET current_stage_id = @current_stage_id, stage_entered_at = @stage_entered_at, status = @status,
        triggers = @triggers, gate_evals = @gate_evals, decisions = @decisions, packets = @packets,
        submissions = @submissions, tool_calls = @tool_calls, version = @version, chain_tip = @chain_tip,
        head_hash = @head_hash
       WHERE run_pk = @run_pk`,
    ),
    insertRecord: db.prepare(
      `INSERT INTO run_records (run_pk, ${RECORD_COLUMNS})
       VALUES (@run_pk, @position, @kind, @seq, @trigger_id, @decision_id, @submission_id, @bytes, @sha256, @prevHash)`,
    ),
    atPosition: records("AND position = ?"),
    bySeq: records("AND kind = ? AND seq = ?"),
    firstByTrigger: records("AND kind = ? AND trigger_id = ? AND seq <= ? ORDER BY seq LIMIT 1"),
    byDecision: records("AND kind = ? AND decision_id = ? AND seq <= ? ORDER BY seq"),
    lastBySubmission: records("AND kind = 'submission' AND submission_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1"),
    upToSeq: records("AND kind = ? AND seq <= ? ORDER BY seq"),
    wholeLog: records("ORDER BY position"),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

/**
 * Runs the group commits of every store in the process once per event-loop turn (after I/O, so that commits
 * of requests handled in the same turn share a transaction). Stores whose commits went stale in their last
 * flush go first: writers on different connections racing on one run then take turns winning, instead of
 * the one whose retries happen to be scheduled first winning every time.
 */
class GroupCommitScheduler {
  private readonly waiting = new Set<GroupFlush>();
  private readonly losses = new WeakMap<GroupFlush, number>();

  schedule(flush: GroupFlush): void {
    if (this.waiting.size === 0) setImmediate(() => this.run());
    this.waiting.add(flush);
  }

  private run(): void {
    const lossesOf = (flush: GroupFlush) => this.losses.get(flush) ?? 0;
    const flushes = [...this.waiting].sort((a, b) => lossesOf(b) - lossesOf(a));
    this.waiting.clear();
    for (const flush of flushes) this.losses.set(flush, flush() ? lossesOf(flush) + 1 : 0);
  }
}

/** Commits a store's queued changes; true when one of them lost a race (went stale). */
type GroupFlush = () => boolean;

const groupCommits = new GroupCommitScheduler();

interface PendingCommit {
  key: RunKey;
  expectedVersion: number;
  change: RunChange;
  encoded: EncodedRecord[];
  /** Set by `apply` when the commit appended records: the run's new newest record. */
  tail?: KnownTail;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class SqliteRunStateStore implements RunStateStore {
  private readonly statements: Statements;
  private readonly receipts: SqliteReceipts;
  private readonly pending: PendingCommit[] = [];
  /** Tails written or verified by this store, by run key text, least recently used first. */
  private readonly knownTails = new Map<string, KnownTail>();

  constructor(private readonly db: SqliteDatabase) {
    this.statements = prepareStatements(db);
    this.receipts = new SqliteReceipts(db);
  }

  async create(state: RunState, receipts: StoredReceipt[] = []): Promise<void> {
    const encoded = encodeAppended(state);
    this.db.write(LABEL, () => {
      if (this.statements.head.get(...keyParams(state)) !== undefined) {
        throw new ControlPlaneError("run_exists", `run already exists: ${state.run_id}`);
      }
      const chained = chainRecords(zeroCounts(), genesisHash(state), encoded, state);
      const fields = headFields(state, state, chained.counts, 0, chained.chainTip);
      const { lastInsertRowid } = this.statements.insertHead.run({ ...fields, head_hash: headHash(fields) });
      this.insertRecords(Number(lastInsertRowid), chained.records);
      this.receipts.insert(Number(lastInsertRowid), receipts);
    });
  }

  /*
   * No transaction is needed for a consistent view: records are never changed once written, and every read
   * of a session is bounded by the counts of the head it started from.
   */
  async open(key: RunKey): Promise<RunSession | undefined> {
    return this.db.query(LABEL, () => {
      const row = this.statements.head.get(...keyParams(key));
      if (row === undefined) return undefined;
      const run = runKeyText(key);
      const records = new RunRecords(this.db, this.statements, key, row);
      const tail = records.verifyTail(this.knownTails.get(run));
      this.rememberTail(run, tail);
      return new SqliteRunSession(records, this.receipts, row.run_pk, run);
    });
  }

  /** Queues the commit for the next group commit and settles once that transaction is durable. */
  async commit(key: RunKey, expectedVersion: number, change: RunChange): Promise<void> {
    const encoded = encodeAppended(change.appended);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ key, expectedVersion, change, encoded, resolve, reject });
      if (this.pending.length === 1) groupCommits.schedule(this.flushPending);
    });
  }

  /**
   * Group commit: the commits queued while the event loop was busy share one `BEGIN IMMEDIATE` transaction,
   * and so one fsync. Each runs in its own savepoint, so a stale or failing one is rolled back alone; all are
   * settled only after the transaction committed.
   */
  private readonly flushPending: GroupFlush = () => {
    const batch = this.pending.splice(0);
    const failures = new Map<PendingCommit, unknown>();
    try {
      this.db.write(LABEL, () => {
        for (const item of batch) {
          try {
            this.db.savepoint(LABEL, () => this.apply(item));
          } catch (error) {
            failures.set(item, error);
          }
        }
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
      return false;
    }
    for (const item of batch) {
      if (failures.has(item)) {
        item.reject(failures.get(item));
      } else {
        if (item.tail !== undefined) this.rememberTail(runKeyText(item.key), item.tail);
        item.resolve();
      }
    }
    return [...failures.values()].some((error) => error instanceof StaleRunVersionError);
  };

  /** One commit: the head must still be at the expected version; records extend the chain; the version bumps. */
  private apply(item: PendingCommit): void {
    const { key, expectedVersion, change, encoded } = item;
    const row = this.statements.head.get(...keyParams(key));
    if (row === undefined) throw new StaleRunVersionError(key);
    const current = verifiedFields(key, row);
    if (current.version !== expectedVersion) throw new StaleRunVersionError(key);
    const chained = chainRecords(countsIn(current), current.chain_tip, encoded, key);
    const fields: HeadFields = {
      ...current,
      ...positionFields(change),
      ...chained.counts,
      version: current.version + 1,
      chain_tip: chained.chainTip,
    };
    this.insertRecords(row.run_pk, chained.records);
    this.receipts.insert(row.run_pk, change.receipts ?? []);
    this.statements.updateHead.run({ ...fields, head_hash: headHash(fields), run_pk: row.run_pk });
    const last = chained.records.at(-1);
    // Remembered only once the transaction has committed (see flushPending).
    if (last !== undefined) item.tail = knownTail(last, chained.chainTip);
  }

  /** Keeps `tail` as the run's newest record (undefined: nothing to remember, e.g. an empty log). */
  private rememberTail(run: string, tail: KnownTail | undefined): void {
    this.knownTails.delete(run);
    if (tail === undefined) return;
    this.knownTails.set(run, tail);
    if (this.knownTails.size > KNOWN_TAILS) {
      const oldest = this.knownTails.keys().next().value;
      if (oldest !== undefined) this.knownTails.delete(oldest);
    }
  }

  async load(key: RunKey): Promise<RunState | undefined> {
    return this.db.read(LABEL, () => {
      const row = this.statements.head.get(...keyParams(key));
      return row === undefined ? undefined : new RunRecords(this.db, this.statements, key, row).loadAll();
    });
  }

  async loadReceipts(key: RunKey): Promise<StoredReceipt[]> {
    return this.db.read(LABEL, () => {
      const row = this.statements.head.get(...keyParams(key));
      return row === undefined ? [] : this.receipts.all(row.run_pk, runKeyText(key));
    });
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }

  private insertRecords(runPk: number, records: ChainedRecord[]): void {
    for (const record of records) this.statements.insertRecord.run({ ...record, run_pk: runPk });
  }
}

/** Verified reads of one run, bounded by the counts of the head they were opened with. */
class RunRecords {
  readonly head: RunHead;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly statements: Statements,
    private readonly key: RunKey,
    private readonly row: HeadRow,
  ) {
    this.head = this.verifiedHead();
  }

  /**
   * The newest record must exist, check out and end the chain the head points to (catches a cut-off log). When it
   * is exactly `known` (every column and byte equal, and the head names the same chain tip), it was checked or
   * written by this store already and is not decoded again. Returns the tail as verified, for next time.
   */
  verifyTail(known?: KnownTail): KnownTail | undefined {
    const total = totalOf(this.head.counts);
    if (total === 0) {
      if (this.row.chain_tip !== genesisHash(this.key)) throw this.corrupt("chain tip does not match an empty log");
      return undefined;
    }
    const tail = this.statements.atPosition.get(this.row.run_pk, total);
    if (tail === undefined) throw this.corrupt(`log truncated: record ${total} missing`);
    if (known !== undefined && known.chainTip === this.row.chain_tip && sameTail(known, tail)) {
      if (tail.seq === this.head.counts[LOG_OF[this.kindOf(tail)]]) return known;
    }
    const kind = this.kindOf(tail);
    if (tail.seq !== this.head.counts[LOG_OF[kind]]) throw this.corrupt(`record ${total}: not the last ${kind}`);
    this.verifyRecord(tail, kind);
    if (linkHash(tail.prev_hash, tail) !== this.row.chain_tip) {
      throw this.corrupt(`record ${total}: chain tip does not match the head`);
    }
    return knownTail(
      {
        position: tail.position,
        kind,
        seq: tail.seq,
        trigger_id: tail.trigger_id,
        decision_id: tail.decision_id,
        submission_id: tail.submission_id,
        bytes: tail.record_json as Uint8Array,
        sha256: tail.record_sha256,
        prevHash: tail.prev_hash,
      },
      this.row.chain_tip,
    );
  }

  first<K extends RecordKind>(kind: K, triggerId: string): RecordTypes[K] | undefined {
    const maxSeq = this.head.counts[LOG_OF[kind]];
    return this.read(kind, () => this.statements.firstByTrigger.get(this.row.run_pk, kind, triggerId, maxSeq));
  }

  lastOf<K extends RecordKind>(kind: K): RecordTypes[K] | undefined {
    const seq = this.head.counts[LOG_OF[kind]];
    if (seq === 0) return undefined;
    const row = this.query(() => this.statements.bySeq.get(this.row.run_pk, kind, seq));
    if (row === undefined) throw this.corrupt(`log truncated: ${kind} ${seq} missing`);
    return this.verifyRecord(row, kind);
  }

  packetsOf(decisionId: string): PacketRecord[] {
    const maxSeq = this.head.counts.packets;
    const rows = this.query(() => this.statements.byDecision.all(this.row.run_pk, "packet", decisionId, maxSeq));
    return rows.map((row) => this.verifyRecord(row, "packet"));
  }

  submission(submissionId: string): SubmissionRecord | undefined {
    const maxSeq = this.head.counts.submissions;
    return this.read("submission", () => this.statements.lastBySubmission.get(this.row.run_pk, submissionId, maxSeq));
  }

  allOf<K extends RecordKind>(kind: K): RecordTypes[K][] {
    const maxSeq = this.head.counts[LOG_OF[kind]];
    const rows = this.query(() => this.statements.upToSeq.all(this.row.run_pk, kind, maxSeq));
    if (rows.length !== maxSeq) throw this.corrupt(`log truncated: ${rows.length} of ${maxSeq} ${kind} records`);
    return rows.map((row) => this.verifyRecord(row, kind));
  }

  /** The whole run from its log, verifying every record, the order of positions and seqs, and the chain. */
  loadAll(): RunState {
    const rows = this.statements.wholeLog.all(this.row.run_pk);
    const logs = emptyAppendedRecords();
    const seen = zeroCounts();
    let chain = genesisHash(this.key);
    for (const [index, row] of rows.entries()) {
      if (row.position !== index + 1) throw this.corrupt(`log truncated: record ${index + 1} missing`);
      if (row.prev_hash !== chain) throw this.corrupt(`record ${row.position}: chain link broken`);
      const kind = this.kindOf(row);
      const log = LOG_OF[kind];
      seen[log]++;
      if (row.seq !== seen[log]) throw this.corrupt(`record ${row.position}: ${kind} ${row.seq} out of order`);
      (logs[log] as AnyRecord[]).push(this.verifyRecord(row, kind));
      chain = linkHash(chain, row);
    }
    for (const log of Object.keys(seen) as LogName[]) {
      if (seen[log] !== this.head.counts[log]) {
        throw this.corrupt(`log truncated: ${seen[log]} of ${this.head.counts[log]} ${log} records`);
      }
    }
    if (chain !== this.row.chain_tip) throw this.corrupt("chain tip does not match the head");
    const { counts: _counts, version: _version, ...head } = this.head;
    return { ...head, ...logs };
  }

  private read<K extends RecordKind>(kind: K, select: () => RecordRow | undefined): RecordTypes[K] | undefined {
    const row = this.query(select);
    return row === undefined ? undefined : this.verifyRecord(row, kind);
  }

  private query<T>(work: () => T): T {
    return this.db.query(LABEL, work);
  }

  private kindOf(row: RecordRow): RecordKind {
    const kind = KINDS.find((candidate) => candidate === row.kind);
    if (kind === undefined) throw this.corrupt(`record ${row.position}: unknown kind ${JSON.stringify(row.kind)}`);
    return kind;
  }

  /** Hash, size and schema of the stored bytes, and agreement of the lookup columns with the record. */
  private verifyRecord<K extends RecordKind>(row: RecordRow, kind: K): RecordTypes[K] {
    const where = `record ${row.position} (${kind} ${row.seq})`;
    const fail = (what: string) => this.corrupt(`${where}: ${what}`);
    if (row.kind !== kind) throw fail(`stored as ${row.kind}`);
    const record = decodeVerified(SCHEMA_OF[kind], row.record_json, row.record_sha256, MAX_STATE_BYTES, fail);
    const expected = lookupsOf(kind, record);
    const recordSeq = seqOf(kind, record);
    if (
      expected.trigger_id !== row.trigger_id ||
      expected.decision_id !== row.decision_id ||
      expected.submission_id !== row.submission_id ||
      (recordSeq !== null && recordSeq !== row.seq)
    ) {
      throw fail("index columns do not match the record");
    }
    return record;
  }

  private verifiedHead(): RunHead {
    const row = verifiedFields(this.key, this.row);
    const column = <T extends z.ZodType>(schema: T, name: string, value: () => unknown): z.output<T> => {
      try {
        return decode(schema, value(), name);
      } catch (error) {
        throw this.corrupt(`head undecodable: ${(error as Error).message}`);
      }
    };
    return {
      tenant_id: this.key.tenant_id,
      namespace_id: this.key.namespace_id,
      run_id: this.key.run_id,
      scenario_id: row.scenario_id,
      spec_hash: column(HashDigest, "spec_hash", () => parseJson(row.spec_hash)),
      current_stage_id: row.current_stage_id,
      stage_entered_at: column(Timestamp, "stage_entered_at", () => parseJson(row.stage_entered_at)),
      status: column(RunStatus, "status", () => row.status),
      dispatch_targets: column(DispatchTargets, "dispatch_targets", () => parseJson(row.dispatch_targets)),
      counts: countsIn(row),
      version: row.version,
    };
  }

  private corrupt(what: string): ControlPlaneError {
    return corruptRun(this.key, what);
  }
}

function corruptRun(key: RunKey, what: string): ControlPlaneError {
  return storeCorrupt("run state", runKeyText(key), what);
}

/** The columns of a head row, checked against the row's checksum. */
function verifiedFields(key: RunKey, row: HeadRow): HeadFields {
  const { run_pk: _runPk, head_hash: storedHash, ...fields } = row;
  if (headHash(fields) !== storedHash) throw corruptRun(key, "head hash mismatch");
  return fields;
}

class SqliteRunSession implements RunSession {
  readonly head: RunHead;

  constructor(
    private readonly records: RunRecords,
    private readonly receipts: SqliteReceipts,
    private readonly runPk: number,
    private readonly run: string,
  ) {
    this.head = records.head;
  }

  async lastReceipt(): Promise<StoredReceipt | undefined> {
    return this.receipts.last(this.runPk, this.run);
  }

  async receiptOfDecision(decisionId: string): Promise<StoredReceipt | undefined> {
    return this.receipts.ofDecision(this.runPk, decisionId, this.run);
  }

  async decisionForTrigger(triggerId: string): Promise<DecisionRecord | undefined> {
    return this.records.first("decision", triggerId);
  }

  async triggerEvent(triggerId: string): Promise<TriggerEvent | undefined> {
    return this.records.first("trigger", triggerId)?.event;
  }

  async lastDecision(): Promise<DecisionRecord | undefined> {
    return this.records.lastOf("decision");
  }

  async packetsOfDecision(decisionId: string): Promise<PacketRecord[]> {
    return this.records.packetsOf(decisionId);
  }

  async submission(submissionId: string): Promise<SubmissionRecord | undefined> {
    return this.records.submission(submissionId);
  }

  async issuedPacketIds(): Promise<string[]> {
    return this.records.allOf("packet").map((packet) => packet.envelope.packet_id);
  }
}

/** The columns of a record row that `sameTail` compares, whether just written or just verified. */
type TailColumns = Lookups & Pick<ChainedRecord, "position" | "seq" | "prevHash" | "sha256"> & { kind: string };

function knownTail(record: TailColumns & { bytes: Uint8Array }, chainTip: string): KnownTail {
  const { trigger_id, decision_id, submission_id } = record;
  return {
    chainTip,
    position: record.position,
    kind: record.kind,
    seq: record.seq,
    lookups: { trigger_id, decision_id, submission_id },
    bytes: record.bytes,
    sha256: record.sha256,
    prevHash: record.prevHash,
  };
}

/** Whether a stored row is exactly the remembered tail: every column, and the record's bytes. */
function sameTail(known: KnownTail, row: RecordRow): boolean {
  return (
    row.position === known.position &&
    row.kind === known.kind &&
    row.seq === known.seq &&
    row.trigger_id === known.lookups.trigger_id &&
    row.decision_id === known.lookups.decision_id &&
    row.submission_id === known.lookups.submission_id &&
    row.record_sha256 === known.sha256 &&
    row.prev_hash === known.prevHash &&
    row.record_json instanceof Uint8Array &&
    Buffer.compare(row.record_json, known.bytes) === 0
  );
}

function keyParams(key: RunKey): [string, string, string] {
  return [String(key.tenant_id), String(key.namespace_id), key.run_id];
}

function zeroCounts(): LogCounts {
  return { triggers: 0, gate_evals: 0, decisions: 0, packets: 0, submissions: 0, tool_calls: 0 };
}

function countsIn(fields: LogCounts): LogCounts {
  const { triggers, gate_evals, decisions, packets, submissions, tool_calls } = fields;
  return { triggers, gate_evals, decisions, packets, submissions, tool_calls };
}

function totalOf(counts: LogCounts): number {
  return KINDS.reduce((sum, kind) => sum + counts[LOG_OF[kind]], 0);
}

function lookupsOf(kind: RecordKind, record: AnyRecord): Lookups {
  const none: Lookups = { trigger_id: null, decision_id: null, submission_id: null };
  switch (kind) {
    case "trigger":
      return { ...none, trigger_id: (record as TriggerRecord).event.trigger_id };
    case "gate_eval":
      return { ...none, trigger_id: (record as GateEvalRecord).trigger_id };
    case "decision": {
      const decision = record as DecisionRecord;
      return { ...none, trigger_id: decision.trigger_id, decision_id: decision.decision_id };
    }
    case "packet":
      return { ...none, decision_id: (record as PacketRecord).decision_id };
    case "submission":
      return { ...none, submission_id: (record as SubmissionRecord).submission_id };
    case "tool_call":
      return none;
  }
}

/** The seq a trigger or decision record carries in its own JSON (other kinds have none). */
function seqOf(kind: RecordKind, record: AnyRecord): number | null {
  if (kind === "trigger" || kind === "decision") return Number((record as TriggerRecord | DecisionRecord).seq);
  return null;
}

/** Canonical bytes of every appended record, in log order (triggers first, tool calls last). */
function encodeAppended(appended: AppendedRecords): EncodedRecord[] {
  const encoded: EncodedRecord[] = [];
  for (const kind of KINDS) {
    for (const record of appended[LOG_OF[kind]] as AnyRecord[]) {
      const bytes = Buffer.from(canonicalJson(record as unknown as JsonValue), "utf8");
      if (bytes.length > MAX_STATE_BYTES) {
        throw new ControlPlaneError(
          "record_too_large",
          `run state record exceeds size limit: ${bytes.length} bytes (max ${MAX_STATE_BYTES})`,
        );
      }
      encoded.push({
        kind,
        recordSeq: seqOf(kind, record),
        bytes,
        sha256: sha256Hex(bytes),
        ...lookupsOf(kind, record),
      });
    }
  }
  return encoded;
}

/** Gives each record its position, seq and chain link after a log at `counts` ending in `chainTip`. */
function chainRecords(counts: LogCounts, chainTip: string, encoded: EncodedRecord[], key: RunKey) {
  const next = { ...counts };
  let position = totalOf(counts);
  let tip = chainTip;
  const records = encoded.map((record): ChainedRecord => {
    const log = LOG_OF[record.kind];
    next[log]++;
    if (record.recordSeq !== null && record.recordSeq !== next[log]) {
      throw new InternalError(`${record.kind} seq ${record.recordSeq} appended as ${next[log]} in ${runKeyText(key)}`);
    }
    const chained = { ...record, position: ++position, seq: next[log], prevHash: tip };
    tip = linkHash(tip, {
      position: chained.position,
      kind: record.kind,
      seq: chained.seq,
      record_sha256: record.sha256,
    });
    return chained;
  });
  return { records, counts: next, chainTip: tip };
}

/** The chain starts from a hash of the run key, so records cannot be moved to another run unnoticed. */
function genesisHash(key: RunKey): string {
  return sha256Hex(`decision-gate run records v1\n${runKeyText(key)}`);
}

/** The link of one record: binds the previous link, its place in the log and the hash of its bytes. */
function linkHash(prev: string, record: { position: number; kind: string; seq: number; record_sha256: string }) {
  return sha256Hex(`${prev}\n${record.position}\n${record.kind}\n${record.seq}\n${record.record_sha256}`);
}

/** What a head row says about a run besides its position in the log. */
type RunIdentity = RunKey & Pick<RunState, "scenario_id" | "spec_hash" | "dispatch_targets">;
type RunPosition = Pick<RunState, "current_stage_id" | "stage_entered_at" | "status">;

function headFields(
  run: RunIdentity,
  at: RunPosition,
  counts: LogCounts,
  version: number,
  chainTip: string,
): HeadFields {
  return {
    tenant_id: String(run.tenant_id),
    namespace_id: String(run.namespace_id),
    run_id: run.run_id,
    scenario_id: run.scenario_id,
    spec_hash: canonicalJson(run.spec_hash as unknown as JsonValue),
    ...positionFields(at),
    dispatch_targets: canonicalJson(run.dispatch_targets as unknown as JsonValue),
    ...counts,
    version,
    chain_tip: chainTip,
  };
}

function positionFields(at: RunPosition): Pick<HeadFields, "current_stage_id" | "stage_entered_at" | "status"> {
  return {
    current_stage_id: at.current_stage_id,
    stage_entered_at: canonicalJson(at.stage_entered_at as unknown as JsonValue),
    status: at.status,
  };
}

/** A checksum over every head column, so a head row edited or torn outside the store is detected on read. */
function headHash(fields: HeadFields): string {
  return sha256Hex(
    JSON.stringify([
      fields.tenant_id,
      fields.namespace_id,
      fields.run_id,
      fields.scenario_id,
      fields.spec_hash,
      fields.current_stage_id,
      fields.stage_entered_at,
      fields.status,
      fields.dispatch_targets,
      fields.triggers,
      fields.gate_evals,
      fields.decisions,
      fields.packets,
      fields.submissions,
      fields.tool_calls,
      fields.version,
      fields.chain_tip,
    ]),
  );
}
