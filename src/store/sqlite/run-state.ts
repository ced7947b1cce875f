import { ControlPlaneError } from "../../core/errors.js";
import { type RunKey, runKeyText } from "../../core/run/store.js";
import type { FoundRun, PlannedAppend, RunBackend, RunReceipts, RunRows } from "../run-log/backend.js";
import { duplicateTriggerError } from "../run-log/records.js";
import { ChainedRunStore } from "../run-log/run-store.js";
import type { SqliteDatabase } from "./database.js";
import { GroupCommitQueue } from "./group-commit.js";
import { SqliteReceipts } from "./receipts.js";
import { keyParams, LABEL, prepareStatements, SqliteRunLogSource, type Statements } from "./run-state-sql.js";

/*
 * The SQLite run-state store: a run is one `runs` row (the head) plus its records in the append-only
 * `run_records` table, and its trigger ids listed once more in `run_trigger_ids`, a table apart from the lookup
 * index. An append is one savepoint of a group-committed `BEGIN IMMEDIATE` transaction (group-commit.ts) that
 * re-reads the head, so writers on other connections or processes cannot fork a run; the primary keys and unique
 * indexes of the tables are the final fence. What is written and how it is verified is shared by every backend
 * (src/store/run-log/).
 */

/** A run's rows in one SQLite file, referred to by the `run_pk` of its head. */
class SqliteRunRows implements RunBackend<number> {
  private readonly statements: Statements;
  private readonly receiptRows: SqliteReceipts;
  private readonly commits: GroupCommitQueue;

  constructor(private readonly db: SqliteDatabase) {
    this.statements = prepareStatements(db);
    this.receiptRows = new SqliteReceipts(db);
    this.commits = new GroupCommitQueue(db, LABEL);
  }

  find(key: RunKey): FoundRun<number> | undefined {
    return this.db.query(LABEL, () => this.headOf(key));
  }

  keys(): RunKey[] {
    return this.db
      .query(LABEL, () => this.statements.allRuns.all())
      .map((row) => ({ tenant_id: BigInt(row.tenant_id), namespace_id: BigInt(row.namespace_id), run_id: row.run_id }));
  }

  source(runPk: number): SqliteRunLogSource {
    return new SqliteRunLogSource(this.db, this.statements, runPk);
  }

  receipts(runPk: number, key: RunKey): RunReceipts {
    const run = runKeyText(key);
    return {
      last: () => this.receiptRows.last(runPk, run),
      ofDecision: (decisionId) => this.receiptRows.ofDecision(runPk, decisionId, run),
      all: () => this.receiptRows.all(runPk, run),
    };
  }

  /*
   * Reads need no transaction when they are bounded by a head (records are never changed once written, and every
   * read of a session is bounded by the counts of the head it started from); a whole run does.
   */
  snapshot<T>(work: () => T): T {
    return this.db.read(LABEL, work);
  }

  async insert(key: RunKey, rows: RunRows): Promise<void> {
    this.db.write(LABEL, () => {
      if (this.headOf(key) !== undefined) {
        throw new ControlPlaneError("run_exists", `run already exists: ${key.run_id}`);
      }
      const { lastInsertRowid } = this.statements.insertHead.run(rows.head);
      this.writeRecords(key, Number(lastInsertRowid), rows);
    });
  }

  append(key: RunKey, plan: (found: FoundRun<number> | undefined) => PlannedAppend<number>): Promise<void> {
    return this.commits.run(() => {
      const { ref: runPk, rows } = plan(this.headOf(key));
      this.writeRecords(key, runPk, rows);
      this.statements.updateHead.run({ ...rows.head, run_pk: runPk });
    });
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }

  /** The head row, read inside the caller's transaction (or guard). */
  private headOf(key: RunKey): FoundRun<number> | undefined {
    const row = this.statements.head.get(...keyParams(key));
    return row === undefined ? undefined : { ref: row.run_pk, head: row };
  }

  /** Records, trigger-list entries and receipts; a trigger id listed already refuses the write. */
  private writeRecords(key: RunKey, runPk: number, rows: RunRows): void {
    for (const record of rows.records) this.statements.insertRecord.run({ ...record, run_pk: runPk });
    for (const entry of rows.listed) {
      if (this.statements.insertListed.run({ ...entry, run_pk: runPk }).changes === 0) {
        throw duplicateTriggerError(key, entry);
      }
    }
    this.receiptRows.insert(runPk, rows.receipts);
  }
}

export class SqliteRunStateStore extends ChainedRunStore<number> {
  constructor(db: SqliteDatabase) {
    super(new SqliteRunRows(db));
  }
}
