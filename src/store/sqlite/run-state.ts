import { ControlPlaneError, InternalError } from "../../core/errors.js";
import { type RunKey, runKeyText, StaleRunVersionError } from "../../core/run/store.js";
import {
  type FoundRun,
  type PlannedAppend,
  type RunBackend,
  type RunLogSource,
  type RunReceipts,
  type RunRows,
  type RunSnapshot,
  resolvedSource,
} from "../run-log/backend.js";
import { duplicateTriggerError } from "../run-log/records.js";
import { ChainedRunStore } from "../run-log/run-store.js";
import type { SqliteDatabase } from "./database.js";
import { SqliteReceipts } from "./receipts.js";
import {
  appendSteps,
  insertSteps,
  keyParams,
  LABEL,
  prepareStatements,
  refusalAt,
  SqliteRunLogSource,
  type Statements,
} from "./run-state-sql.js";
import type { WriteStep } from "./writer-group.js";

/*
 * The SQLite run-state store: a run is one `runs` row (the head) plus its records in the append-only
 * `run_records` table, and its trigger ids listed once more in `run_trigger_ids`, a table apart from the lookup
 * index. Writes are group-committed by the database's writer thread (writer.ts): an append is planned here on the
 * head as read, and its head update is guarded by that head's checksum inside the write transaction, so writers
 * on other connections or processes cannot fork a run; the primary keys and unique indexes of the tables are the
 * final fence. What is written and how it is verified is shared by every backend (src/store/run-log/).
 */

/** A run's rows in one SQLite file, referred to by the `run_pk` of its head. */
class SqliteRunRows implements RunBackend<number> {
  private readonly statements: Statements;
  private readonly receiptRows: SqliteReceipts;

  constructor(private readonly db: SqliteDatabase) {
    this.statements = prepareStatements(db);
    this.receiptRows = new SqliteReceipts(db);
  }

  async find(key: RunKey): Promise<FoundRun<number> | undefined> {
    return this.db.query(LABEL, () => this.headOf(key));
  }

  async keys(): Promise<RunKey[]> {
    return this.db
      .query(LABEL, () => this.statements.allRuns.all())
      .map((row) => ({ tenant_id: BigInt(row.tenant_id), namespace_id: BigInt(row.namespace_id), run_id: row.run_id }));
  }

  source(runPk: number): RunLogSource {
    return resolvedSource(new SqliteRunLogSource(this.db, this.statements, runPk));
  }

  receipts(runPk: number, key: RunKey): RunReceipts {
    const run = runKeyText(key);
    const read = <T>(work: () => T) => this.db.query(LABEL, work);
    return {
      last: async () => read(() => this.receiptRows.last(runPk, run)),
      ofDecision: async (decisionId) => read(() => this.receiptRows.ofDecision(runPk, decisionId, run)),
      all: async () => read(() => this.receiptRows.all(runPk, run)),
    };
  }

  /** One read transaction, synchronous from start to end: the head and the rows it bounds are one state. */
  async snapshot(key: RunKey): Promise<RunSnapshot<number> | undefined> {
    return this.db.read(LABEL, () => {
      const found = this.headOf(key);
      if (found === undefined) return undefined;
      const rows = new SqliteRunLogSource(this.db, this.statements, found.ref);
      return { ...found, log: rows.wholeLog(), triggerList: rows.triggerList() };
    });
  }

  async insert(key: RunKey, rows: RunRows): Promise<void> {
    await this.write(key, rows, insertSteps(rows), () => {
      return new ControlPlaneError("run_exists", `run already exists: ${key.run_id}`);
    });
  }

  /** Written only if the run's head is still the one planned on when the group commits (the writer's guard). */
  async append(
    key: RunKey,
    plan: (found: FoundRun<number> | undefined) => PlannedAppend<number>,
    basis?: FoundRun<number>,
  ): Promise<void> {
    const found = basis ?? this.db.query(LABEL, () => this.headOf(key));
    const { ref: runPk, rows } = plan(found);
    if (found === undefined) throw new StaleRunVersionError(key);
    await this.write(key, rows, appendSteps(runPk, found.head.head_hash, rows), () => new StaleRunVersionError(key));
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }

  /** The head row, read inside the caller's transaction (or guard). */
  private headOf(key: RunKey): FoundRun<number> | undefined {
    const row = this.statements.head.get(...keyParams(key));
    return row === undefined ? undefined : { ref: row.run_pk, head: row };
  }

  /** Commits `steps` (the rows of `rows`); a refused head step is `headRefused`, a refused trigger id a duplicate. */
  private async write(key: RunKey, rows: RunRows, steps: WriteStep[], headRefused: () => Error): Promise<void> {
    const result = await this.db.commitOffThread(steps);
    if (!("refusedAt" in result)) return;
    const refusal = refusalAt(result.refusedAt, rows);
    if ("head" in refusal) throw headRefused();
    const entry = rows.listed[refusal.listed];
    if (entry === undefined) throw new InternalError(`run state store: write refused at step ${result.refusedAt}`);
    throw duplicateTriggerError(key, entry);
  }
}

export class SqliteRunStateStore extends ChainedRunStore<number> {
  constructor(db: SqliteDatabase) {
    super(new SqliteRunRows(db));
  }
}
