import type { RunKey } from "../../core/run/store.js";
import type { RunRows, StoredRecord } from "../run-log/backend.js";
import { HEAD_COLUMNS, MOVING_HEAD_COLUMNS } from "../run-log/head.js";
import { encodeReceipt } from "../run-log/receipts.js";
import { LOG_NAMES } from "../run-log/records.js";

/*
 * The SQL of the PostgreSQL run-state store over the tables of migrations.ts: `runs` (heads), `run_records` (every
 * record, append-only), `run_trigger_ids` (the trigger list) and `action_receipts`, all keyed by tenant, namespace
 * and run ($1, $2, $3 in every statement). Head columns come from the head row's column list
 * (src/store/run-log/head.ts), so a log added to the kinds table needs no edit here.
 */

/** The key of a run as its rows hold it: tenant, namespace, run id. */
export type RunRef = readonly [string, string, string];

export function refOf(key: RunKey): RunRef {
  return [String(key.tenant_id), String(key.namespace_id), key.run_id];
}

const KEY = "tenant_id = $1 AND namespace_id = $2 AND run_id = $3";
/** The columns of a record row, as a backend reads them back. */
export const RECORD_COLUMN_NAMES = [
  "position",
  "kind",
  "seq",
  "trigger_id",
  "decision_id",
  "submission_id",
  "record_json",
  "record_sha256",
  "prev_hash",
] as const satisfies readonly (keyof StoredRecord)[];
const RECORD_COLUMNS = RECORD_COLUMN_NAMES.join(", ");
const records = (where: string) => `SELECT ${RECORD_COLUMNS} FROM run_records WHERE ${KEY} ${where}`;
const receipts = (where: string) => `SELECT receipt_json, row_sha256 FROM action_receipts WHERE ${KEY} ${where}`;

/** The `tail_` column a head query returns a column of the run's newest record as. */
export const tailColumn = (column: string) => `tail_${column}`;

export const READ_SQL = {
  /** The head row, and the newest record it counts (if stored) in `tail_` columns: one round trip to open a run. */
  head: `SELECT ${HEAD_COLUMNS.map((column) => `h.${column}`).join(", ")}, h.head_hash,
      ${RECORD_COLUMN_NAMES.map((column) => `t.${column} AS ${tailColumn(column)}`).join(", ")}
    FROM runs h LEFT JOIN run_records t ON t.tenant_id = h.tenant_id AND t.namespace_id = h.namespace_id
      AND t.run_id = h.run_id AND t.position = ${LOG_NAMES.map((log) => `h.${log}`).join(" + ")}
    WHERE h.tenant_id = $1 AND h.namespace_id = $2 AND h.run_id = $3`,
  allRuns: "SELECT tenant_id, namespace_id, run_id FROM runs ORDER BY created",
  atPosition: records("AND position = $4"),
  prevHashAt: `SELECT prev_hash FROM run_records WHERE ${KEY} AND position = $4`,
  bySeq: records("AND kind = $4 AND seq = $5"),
  firstByTrigger: records("AND kind = $4 AND trigger_id = $5 AND seq <= $6 ORDER BY seq LIMIT 1"),
  listedTrigger: `SELECT seq FROM run_trigger_ids WHERE ${KEY} AND kind = $4 AND trigger_id = $5`,
  byDecision: records("AND kind = 'packet' AND decision_id = $4 AND seq <= $5 ORDER BY seq"),
  lastBySubmission: records("AND kind = 'submission' AND submission_id = $4 AND seq <= $5 ORDER BY seq DESC LIMIT 1"),
  upToSeq: records("AND kind = $4 AND seq <= $5 ORDER BY seq"),
  wholeLog: records("ORDER BY position"),
  triggerList: `SELECT kind, trigger_id, seq FROM run_trigger_ids WHERE ${KEY}`,
  lastReceipt: receipts("ORDER BY seq DESC LIMIT 1"),
  receiptOfDecision: receipts("AND decision_id = $4 ORDER BY seq LIMIT 1"),
  allReceipts: receipts("ORDER BY seq"),
  /** Which of the given trigger-list entries the run holds already. */
  listedAlready: `SELECT kind, trigger_id FROM run_trigger_ids
    WHERE ${KEY} AND (kind, trigger_id) IN (SELECT * FROM unnest($4::text[], $5::text[]))`,
};

/** A statement's text with its parameters, numbered as they are added. */
class Statement {
  readonly params: unknown[];

  constructor(ref: RunRef) {
    this.params = [...ref];
  }

  /** The placeholder of a new parameter, cast to `type`. */
  add(value: unknown, type: string): string {
    this.params.push(value);
    return `$${this.params.length}::${type}`;
  }
}

/**
 * One statement that writes a new run or an append, all or nothing, committed when it returns: `head` moves the
 * head (a new run's insert, or an append's update guarded by the checksum of the head it was planned on) and the
 * records, trigger-list entries and receipts are written only if it did. `moved` is 0 when the head did not move
 * (the key was taken, or the run moved on since). A trigger id listed already fails the statement with a unique
 * violation on `run_trigger_ids`, so nothing of it is written.
 */
export function writeStatement(ref: RunRef, rows: RunRows, plannedOn: string | undefined) {
  const statement = new Statement(ref);
  const head = plannedOn === undefined ? insertHead(statement, rows) : advanceHead(statement, rows, plannedOn);
  const column = <T>(items: readonly T[], type: string, value: (item: T) => unknown) =>
    statement.add(
      items.map((item) => value(item)),
      `${type}[]`,
    );
  const recordColumns = [
    column(rows.records, "integer", (record) => record.position),
    column(rows.records, "text", (record) => record.kind),
    column(rows.records, "integer", (record) => record.seq),
    column(rows.records, "text", (record) => record.trigger_id),
    column(rows.records, "text", (record) => record.decision_id),
    column(rows.records, "text", (record) => record.submission_id),
    column(rows.records, "bytea", (record) => record.bytes),
    column(rows.records, "text", (record) => record.sha256),
    column(rows.records, "text", (record) => record.prevHash),
  ];
  const listedColumns = [
    column(rows.listed, "text", (entry) => entry.kind),
    column(rows.listed, "text", (entry) => entry.trigger_id),
    column(rows.listed, "integer", (entry) => entry.seq),
  ];
  const encoded = rows.receipts.map(encodeReceipt);
  const receiptColumns = [
    column(encoded, "text", (receipt) => receipt.decision_id),
    column(encoded, "bytea", (receipt) => Buffer.from(receipt.receipt_json)),
    column(encoded, "text", (receipt) => receipt.row_sha256),
  ];
  const text = `WITH head AS (${head}),
    records AS (
      INSERT INTO run_records (tenant_id, namespace_id, run_id, ${RECORD_COLUMNS})
      SELECT $1, $2, $3, r.* FROM unnest(${recordColumns.join(", ")}) AS r WHERE EXISTS (SELECT FROM head)
    ),
    listed AS (
      INSERT INTO run_trigger_ids (tenant_id, namespace_id, run_id, kind, trigger_id, seq)
      SELECT $1, $2, $3, l.* FROM unnest(${listedColumns.join(", ")}) AS l WHERE EXISTS (SELECT FROM head)
    ),
    receipts AS (
      INSERT INTO action_receipts (tenant_id, namespace_id, run_id, seq, decision_id, receipt_json, row_sha256)
      SELECT $1, $2, $3, issued.seq + r.ord, r.decision_id, r.receipt_json, r.row_sha256
      FROM unnest(${receiptColumns.join(", ")}) WITH ORDINALITY AS r (decision_id, receipt_json, row_sha256, ord),
        (SELECT coalesce(max(seq), 0) AS seq FROM action_receipts WHERE ${KEY}) AS issued
      WHERE EXISTS (SELECT FROM head)
    )
    SELECT count(*)::integer AS moved FROM head`;
  return { text, params: statement.params };
}

function insertHead(statement: Statement, rows: RunRows): string {
  const values = HEAD_COLUMNS.map((column) => headValue(statement, rows, column));
  return `INSERT INTO runs (${HEAD_COLUMNS.join(", ")}, head_hash)
    VALUES (${values.join(", ")}, ${statement.add(rows.head.head_hash, "text")})
    ON CONFLICT DO NOTHING RETURNING 1`;
}

/* The update takes the head row's lock, and PostgreSQL re-checks its WHERE on the newest row once granted. */
function advanceHead(statement: Statement, rows: RunRows, plannedOn: string): string {
  const assigned = MOVING_HEAD_COLUMNS.map((column) => `${column} = ${headValue(statement, rows, column)}`);
  return `UPDATE runs SET ${assigned.join(", ")}, head_hash = ${statement.add(rows.head.head_hash, "text")}
    WHERE ${KEY} AND head_hash = ${statement.add(plannedOn, "text")} RETURNING 1`;
}

function headValue(statement: Statement, rows: RunRows, column: (typeof HEAD_COLUMNS)[number]): string {
  const value = rows.head[column];
  return statement.add(value, typeof value === "number" ? "integer" : "text");
}
