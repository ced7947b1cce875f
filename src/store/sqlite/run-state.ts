import { ControlPlaneError } from "../../core/errors.js";
import type { RunState } from "../../core/run/schema.js";
import {
  type RunChange,
  type RunCheckDepth,
  type RunKey,
  type RunSession,
  type RunStateStore,
  type RunStoreCheck,
  type RunStoreVerifier,
  runKeyText,
  StaleRunVersionError,
  type StoredReceipt,
} from "../../core/run/store.js";
import { decodeHead, type HeadFields, headFields, headHash, positionFields, verifiedFields } from "../run-log/head.js";
import {
  type ChainedRecord,
  chainRecords,
  countsIn,
  duplicateTriggerError,
  type EncodedRecord,
  encodeAppended,
  genesisHash,
  type KeyedKind,
  type RecordKind,
  triggerListEntries,
  zeroCounts,
} from "../run-log/records.js";
import { VerifiedRunSession } from "../run-log/session.js";
import {
  type KnownTail,
  type RunLogSource,
  type StoredRecord,
  type StoredTriggerEntry,
  storedForm,
  VerifiedRunLog,
  verifyEachRun,
  verifyToDepth,
} from "../run-log/verified-log.js";
import type { SqliteDatabase, Statement } from "./database.js";
import { SqliteReceipts } from "./receipts.js";

/*
 * The SQLite run-state store: a run is one `runs` row (the head) plus its records in the append-only
 * `run_records` table, chained per run (src/store/run-log/records.ts), and its trigger ids listed once more in
 * `run_trigger_ids`, a table apart from the lookup index. A commit is one `BEGIN IMMEDIATE` transaction that
 * checks the head version, appends and bumps the version, so writers on other connections or processes cannot
 * fork a run. Every row read back is verified (src/store/run-log/verified-log.ts).
 */

const LABEL = "run state store";

interface HeadRow extends HeadFields {
  run_pk: number;
  head_hash: string;
}

const RECORD_COLUMNS =
  "position, kind, seq, trigger_id, decision_id, submission_id, record_json, record_sha256, prev_hash";

function prepareStatements(db: SqliteDatabase) {
  const records = (where: string) =>
    db.prepare<StoredRecord>(`SELECT ${RECORD_COLUMNS} FROM run_records WHERE run_pk = ? ${where}`);
  return {
    head: db.prepare<HeadRow>("SELECT * FROM runs WHERE tenant_id = ? AND namespace_id = ? AND run_id = ?"),
    allRuns: db.prepare<{ tenant_id: string; namespace_id: string; run_id: string }>(
      "SELECT tenant_id, namespace_id, run_id FROM runs ORDER BY run_pk",
    ),
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
    insertListed: db.prepare(
      `INSERT INTO run_trigger_ids (run_pk, kind, trigger_id, seq) VALUES (@run_pk, @kind, @trigger_id, @seq)
       ON CONFLICT DO NOTHING`,
    ),
    atPosition: records("AND position = ?"),
    prevHashAt: db.prepare<{ prev_hash: string }>(
      "SELECT prev_hash FROM run_records WHERE run_pk = ? AND position = ?",
    ),
    bySeq: records("AND kind = ? AND seq = ?"),
    firstByTrigger: records("AND kind = ? AND trigger_id = ? AND seq <= ? ORDER BY seq LIMIT 1"),
    listedTrigger: db.prepare<{ seq: number }>(
      "SELECT seq FROM run_trigger_ids WHERE run_pk = ? AND kind = ? AND trigger_id = ?",
    ),
    triggerList: db.prepare<StoredTriggerEntry>("SELECT kind, trigger_id, seq FROM run_trigger_ids WHERE run_pk = ?"),
    byDecision: records("AND kind = 'packet' AND decision_id = ? AND seq <= ? ORDER BY seq"),
    lastBySubmission: records("AND kind = 'submission' AND submission_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1"),
    upToSeq: records("AND kind = ? AND seq <= ? ORDER BY seq"),
    wholeLog: records("ORDER BY position"),
  };
}
type Statements = ReturnType<typeof prepareStatements>;

/** The raw rows of one run, read with typed errors; `VerifiedRunLog` checks them. */
class SqliteRunLogSource implements RunLogSource {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly statements: Statements,
    private readonly runPk: number,
  ) {}

  atPosition(position: number) {
    return this.get(this.statements.atPosition, position);
  }

  prevHashAt(position: number) {
    return this.get(this.statements.prevHashAt, position)?.prev_hash;
  }

  bySeq(kind: RecordKind, seq: number) {
    return this.get(this.statements.bySeq, kind, seq);
  }

  firstByTrigger(kind: KeyedKind, triggerId: string, maxSeq: number) {
    return this.get(this.statements.firstByTrigger, kind, triggerId, maxSeq);
  }

  listedTrigger(kind: KeyedKind, triggerId: string) {
    return this.get(this.statements.listedTrigger, kind, triggerId)?.seq;
  }

  packetsOf(decisionId: string, maxSeq: number) {
    return this.all(this.statements.byDecision, decisionId, maxSeq);
  }

  lastSubmission(submissionId: string, maxSeq: number) {
    return this.get(this.statements.lastBySubmission, submissionId, maxSeq);
  }

  upToSeq(kind: RecordKind, maxSeq: number) {
    return this.all(this.statements.upToSeq, kind, maxSeq);
  }

  wholeLog() {
    return this.all(this.statements.wholeLog);
  }

  triggerList() {
    return this.all(this.statements.triggerList);
  }

  private get<Row>(statement: Statement<Row>, ...params: unknown[]): Row | undefined {
    return this.db.query(LABEL, () => statement.get(this.runPk, ...params));
  }

  private all<Row>(statement: Statement<Row>, ...params: unknown[]): Row[] {
    return this.db.query(LABEL, () => statement.all(this.runPk, ...params));
  }
}

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

/** Runs whose tails are remembered (each costs about one record's bytes). */
const KNOWN_TAILS = 4096;

export class SqliteRunStateStore implements RunStateStore, RunStoreVerifier {
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
      this.insertRecords(state, Number(lastInsertRowid), chained.records);
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
      const { head, log } = this.verifiedRun(key, row);
      const run = runKeyText(key);
      this.rememberTail(run, log.verifyTail(this.knownTails.get(run)));
      return new VerifiedRunSession(head, log, {
        last: () => this.receipts.last(row.run_pk, run),
        ofDecision: (decisionId) => this.receipts.ofDecision(row.run_pk, decisionId, run),
      });
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
            // The whole transaction is gone (SQLite rolls it back on a full disk or an I/O error): nothing of
            // the batch commits, and this error is every commit's answer.
            if (!this.db.inTransaction()) throw error;
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
    this.insertRecords(key, row.run_pk, chained.records);
    this.receipts.insert(row.run_pk, change.receipts ?? []);
    this.statements.updateHead.run({ ...fields, head_hash: headHash(fields), run_pk: row.run_pk });
    const last = chained.records.at(-1);
    // Remembered only once the transaction has committed (see flushPending).
    if (last !== undefined) item.tail = { chainTip: chained.chainTip, row: storedForm(last) };
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
      if (row === undefined) return undefined;
      const { head, log } = this.verifiedRun(key, row);
      const { counts: _counts, version: _version, ...fields } = head;
      return { ...fields, ...log.loadAll() };
    });
  }

  async loadReceipts(key: RunKey): Promise<StoredReceipt[]> {
    return this.db.read(LABEL, () => {
      const row = this.statements.head.get(...keyParams(key));
      return row === undefined ? [] : this.receipts.all(row.run_pk, runKeyText(key));
    });
  }

  /** Each run in its own read transaction, so that a live server's commits meanwhile are no false alarm. */
  async verifyRuns(depth: RunCheckDepth, progress?: (checked: number, total: number) => void): Promise<RunStoreCheck> {
    const keys = this.db
      .query(LABEL, () => this.statements.allRuns.all())
      .map(
        (row): RunKey => ({
          tenant_id: BigInt(row.tenant_id),
          namespace_id: BigInt(row.namespace_id),
          run_id: row.run_id,
        }),
      );
    const verifyOne = (key: RunKey) =>
      this.db.read(LABEL, () => {
        const row = this.statements.head.get(...keyParams(key));
        return row === undefined ? 0 : verifyToDepth(this.verifiedRun(key, row).log, depth);
      });
    return verifyEachRun(keys, verifyOne, progress);
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }

  private verifiedRun(key: RunKey, row: HeadRow) {
    const fields = verifiedFields(key, row);
    const source = new SqliteRunLogSource(this.db, this.statements, row.run_pk);
    const log = new VerifiedRunLog(source, key, { counts: countsIn(fields), chainTip: fields.chain_tip });
    return { head: decodeHead(key, fields), log };
  }

  private insertRecords(key: RunKey, runPk: number, records: ChainedRecord[]): void {
    for (const record of records) this.statements.insertRecord.run({ ...record, run_pk: runPk });
    for (const entry of triggerListEntries(records)) {
      if (this.statements.insertListed.run({ ...entry, run_pk: runPk }).changes === 0) {
        throw duplicateTriggerError(key, entry);
      }
    }
  }
}

function keyParams(key: RunKey): [string, string, string] {
  return [String(key.tenant_id), String(key.namespace_id), key.run_id];
}
