import type { OnePerTriggerKind, RecordKind, RunKey } from "../../core/run/store.js";
import {
  type RunLogSource,
  type RunRows,
  type StoredRecord,
  type StoredTriggerEntry,
  type Synchronous,
  storedForm,
} from "../run-log/backend.js";
import { HEAD_COLUMNS, MOVING_HEAD_COLUMNS, type StoredHead } from "../run-log/head.js";
import type { SqliteDatabase, Statement } from "./database.js";
import { receiptSteps } from "./receipts.js";
import type { WriteStep } from "./writer-group.js";

/*
 * The SQL of the SQLite run-state store over the tables of migrations.ts: `runs` (heads), `run_records` (every
 * record, append-only) and `run_trigger_ids` (the trigger list). Head columns come from the head row's column
 * list (src/store/run-log/head.ts), so a log added to the kinds table needs no edit here.
 */

export const LABEL = "run state store";

export interface HeadRow extends StoredHead {
  run_pk: number;
}

const RECORD_COLUMNS =
  "position, kind, seq, trigger_id, decision_id, submission_id, record_json, record_sha256, prev_hash";

const named = (columns: readonly string[]) => columns.map((column) => `@${column}`).join(", ");
const assigned = (columns: readonly string[]) => columns.map((column) => `${column} = @${column}`).join(", ");

export function prepareStatements(db: SqliteDatabase) {
  const records = (where: string) =>
    db.prepare<StoredRecord>(`SELECT ${RECORD_COLUMNS} FROM run_records WHERE run_pk = ? ${where}`);
  return {
    head: db.prepare<HeadRow>("SELECT * FROM runs WHERE tenant_id = ? AND namespace_id = ? AND run_id = ?"),
    allRuns: db.prepare<{ tenant_id: string; namespace_id: string; run_id: string }>(
      "SELECT tenant_id, namespace_id, run_id FROM runs ORDER BY run_pk",
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
export type Statements = ReturnType<typeof prepareStatements>;

/*
 * The writes, as steps the writer thread runs in one savepoint (writer-group.ts): the head first (a new run's
 * insert, or an append's update guarded by the head it was planned on), then the records, their trigger-list
 * entries and the receipts. The steps that must change a row are the guards: a key taken, a head moved on, a
 * trigger id listed already.
 */
const WRITE_SQL = {
  insertHead: `INSERT INTO runs (${HEAD_COLUMNS.join(", ")}, head_hash) VALUES (${named(HEAD_COLUMNS)}, @head_hash)
    ON CONFLICT DO NOTHING`,
  advanceHead: `UPDATE runs SET ${assigned(MOVING_HEAD_COLUMNS)}, head_hash = @head_hash
    WHERE run_pk = @run_pk AND head_hash = @planned_on`,
  insertRecord: `INSERT INTO run_records (run_pk, ${RECORD_COLUMNS})
    VALUES (@run_pk, ${named(RECORD_COLUMNS.split(", "))})`,
  insertListed: `INSERT INTO run_trigger_ids (run_pk, kind, trigger_id, seq) VALUES (@run_pk, @kind, @trigger_id, @seq)
    ON CONFLICT DO NOTHING`,
};

/** Where a refused write stopped: its head step, or the trigger-list entry of `rows.listed` at `listed`. */
export type Refusal = { head: true } | { listed: number };

export function refusalAt(step: number, rows: RunRows): Refusal {
  return step === 0 ? { head: true } : { listed: step - 1 - rows.records.length };
}

/** A new run: its `run_pk` is the rowid its head insert took. */
export function insertSteps(rows: RunRows): WriteStep[] {
  return [{ sql: WRITE_SQL.insertHead, params: { ...rows.head }, mustChange: true }, ...rowSteps(undefined, rows)];
}

/** An append planned on the head whose checksum is `plannedOn`: refused at the head if the run moved on since. */
export function appendSteps(runPk: number, plannedOn: string, rows: RunRows): WriteStep[] {
  const head: Record<string, unknown> = { run_pk: runPk, planned_on: plannedOn, head_hash: rows.head.head_hash };
  for (const column of MOVING_HEAD_COLUMNS) head[column] = rows.head[column];
  return [{ sql: WRITE_SQL.advanceHead, params: head, mustChange: true }, ...rowSteps(runPk, rows)];
}

/** Records, trigger-list entries and receipts of a run known by `runPk` (or the rowid of the write's head insert). */
function rowSteps(runPk: number | undefined, rows: RunRows): WriteStep[] {
  const rowidParam = runPk === undefined ? "run_pk" : undefined;
  const step = (sql: string, params: Record<string, unknown>, mustChange = false): WriteStep => ({
    sql,
    params: { ...params, run_pk: runPk },
    mustChange,
    rowidParam,
  });
  return [
    ...rows.records.map((record) =>
      step(WRITE_SQL.insertRecord, { ...storedForm(record), record_json: ownBuffer(record.bytes) }),
    ),
    ...rows.listed.map((entry) => step(WRITE_SQL.insertListed, { ...entry }, true)),
    ...receiptSteps(rows.receipts).map((receipt) => step(receipt.sql, receipt.params)),
  ];
}

/**
 * The bytes in a buffer of their own: sending a view to the writer thread copies its whole buffer, and small
 * buffers are slices of a shared pool.
 */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}

export function keyParams(key: RunKey): [string, string, string] {
  return [String(key.tenant_id), String(key.namespace_id), key.run_id];
}

/** The raw rows of one run, read with typed errors; `VerifiedRunLog` checks them. */
export class SqliteRunLogSource implements Synchronous<RunLogSource> {
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

  firstByTrigger(kind: OnePerTriggerKind, triggerId: string, maxSeq: number) {
    return this.get(this.statements.firstByTrigger, kind, triggerId, maxSeq);
  }

  listedTrigger(kind: OnePerTriggerKind, triggerId: string) {
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
