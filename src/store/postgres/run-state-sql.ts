import type { RunKey } from "../../core/run/store.js";
import { type RunRows, type StoredRecord, storedForm } from "../run-log/backend.js";
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
/** The PostgreSQL type of each record column, for the arrays a write unnests. */
const RECORD_TYPES = {
  position: "integer",
  kind: "text",
  seq: "integer",
  trigger_id: "text",
  decision_id: "text",
  submission_id: "text",
  record_json: "bytea",
  record_sha256: "text",
  prev_hash: "text",
} satisfies Record<(typeof RECORD_COLUMN_NAMES)[number], string>;
const records = (where: string) => `SELECT ${RECORD_COLUMNS} FROM run_records WHERE ${KEY} ${where}`;
const receipts = (where: string) => `SELECT receipt_json, row_sha256 FROM action_receipts WHERE ${KEY} ${where}`;

/** The `tail_` column a head query returns a column of the run's newest record as. */
export const tailColumn = (column: string) => `tail_${column}`;
/** The `found_` column a head query returns a column of the decision its lookahead trigger id finds as. */
export const foundColumn = (column: string) => `found_${column}`;

/*
 * A record by position, as the primary key reaches it whatever the planner knows. Written `position = n`, a generic
 * plan made before the tables had statistics can walk the run's rows through another index on the run's key and
 * filter them, so each read grows with the run (D10). Asked for the last record at or before `n`, the planner takes
 * the primary key backwards and stops at the first row; the outer condition keeps the read exact (a condition
 * outside a LIMIT is not moved into it).
 */
const atPosition = (columns: string, where: string, position: string) =>
  `SELECT ${columns} FROM (SELECT ${columns} FROM run_records r WHERE ${where} AND r.position <= ${position}
    ORDER BY r.position DESC LIMIT 1) exact WHERE exact.position = ${position}`;

const SAME_RUN = (alias: string) =>
  `${alias}.tenant_id = h.tenant_id AND ${alias}.namespace_id = h.namespace_id AND ${alias}.run_id = h.run_id`;
const recordAs = (alias: string, as: (column: string) => string) =>
  RECORD_COLUMN_NAMES.map((column) => `${alias}.${column} AS ${as(column)}`).join(", ");

export const READ_SQL = {
  /**
   * One round trip to open a run: the head row; the newest record it counts in `tail_` columns; the run's last
   * receipt in `receipt_` columns; and for the trigger id $4 (null: none), the two lookups a new trigger needs, read
   * apart as `VerifiedRunLog` requires: the first decision naming it through the lookup index in `found_` columns,
   * and its seq in the trigger list as `listed_seq`. Each part is null where the run holds none.
   */
  head: `SELECT ${HEAD_COLUMNS.map((column) => `h.${column}`).join(", ")}, h.head_hash,
      ${recordAs("t", tailColumn)}, ${recordAs("f", foundColumn)},
      rc.receipt_json AS receipt_receipt_json, rc.row_sha256 AS receipt_row_sha256, l.seq AS listed_seq
    FROM runs h
    LEFT JOIN LATERAL (${atPosition("*", SAME_RUN("r"), LOG_NAMES.map((log) => `h.${log}`).join(" + "))}) t ON true
    LEFT JOIN LATERAL (SELECT receipt_json, row_sha256 FROM action_receipts r
      WHERE ${SAME_RUN("r")} ORDER BY r.seq DESC LIMIT 1) rc ON true
    LEFT JOIN LATERAL (SELECT * FROM run_records d WHERE ${SAME_RUN("d")} AND d.kind = 'decision'
      AND d.trigger_id = $4::text AND d.seq <= h.decisions ORDER BY d.seq LIMIT 1) f ON true
    LEFT JOIN run_trigger_ids l ON ${SAME_RUN("l")} AND l.kind = 'decision' AND l.trigger_id = $4::text
    WHERE h.tenant_id = $1 AND h.namespace_id = $2 AND h.run_id = $3`,
  allRuns: "SELECT tenant_id, namespace_id, run_id FROM runs ORDER BY created",
  atPosition: atPosition(RECORD_COLUMNS, KEY, "$4::integer"),
  prevHashAt: atPosition("position, prev_hash", KEY, "$4::integer"),
  bySeq: records("AND kind = $4 AND seq = $5"),
  firstByTrigger: records("AND kind = $4 AND trigger_id = $5 AND seq <= $6 ORDER BY seq LIMIT 1"),
  listedTrigger: `SELECT seq FROM run_trigger_ids WHERE ${KEY} AND kind = $4 AND trigger_id = $5`,
  byDecision: records("AND kind = 'packet' AND decision_id = $4 AND seq <= $5 ORDER BY seq"),
  lastBySubmission: records("AND kind = 'submission' AND submission_id = $4 AND seq <= $5 ORDER BY seq DESC LIMIT 1"),
  upToSeq: records("AND kind = $4 AND seq <= $5 ORDER BY seq"),
  wholeLog: records("ORDER BY position"),
  triggerList: `SELECT kind, trigger_id, seq FROM run_trigger_ids WHERE ${KEY}`,
  receiptOfDecision: receipts("AND decision_id = $4 ORDER BY seq LIMIT 1"),
  allReceipts: receipts("ORDER BY seq"),
  /** Which of the given trigger-list entries the run holds already. */
  listedAlready: `SELECT kind, trigger_id FROM run_trigger_ids
    WHERE ${KEY} AND (kind, trigger_id) IN (SELECT * FROM unnest($4::text[], $5::text[]))`,
};

/**
 * The seq of the run's newest receipt, read backwards on the primary key (as `max(seq)`, a plan made without
 * statistics may go through another index on the run's key and aggregate all of the run's receipts).
 */
const LAST_RECEIPT_SEQ = `SELECT seq FROM action_receipts WHERE ${KEY} ORDER BY seq DESC LIMIT 1`;

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
export function writeStatement(ref: RunRef, rows: RunRows, plannedOn: string | undefined, yieldTo?: string) {
  const statement = new Statement(ref);
  const head = plannedOn === undefined ? insertHead(statement, rows) : advanceHead(statement, rows, plannedOn, yieldTo);
  const column = <T>(items: readonly T[], type: string, value: (item: T) => unknown) =>
    statement.add(
      items.map((item) => value(item)),
      `${type}[]`,
    );
  const stored = rows.records.map(storedForm);
  const recordColumns = RECORD_COLUMN_NAMES.map((name) => column(stored, RECORD_TYPES[name], (record) => record[name]));
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
        (SELECT coalesce((${LAST_RECEIPT_SEQ}), 0) AS seq) AS issued
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

/*
 * The update takes the head row's lock, and PostgreSQL re-checks its WHERE on the newest row once granted. With
 * `yieldTo` (the text of the run's advisory lock key) it moves the head only if it gets that lock in shared mode at
 * once: never while another replica holds it exclusively or waits for it (PostgreSQL queues a request behind any
 * waiting one it conflicts with), so a replica that lost a race and queued for the run goes next.
 */
function advanceHead(statement: Statement, rows: RunRows, plannedOn: string, yieldTo: string | undefined): string {
  const assigned = MOVING_HEAD_COLUMNS.map((column) => `${column} = ${headValue(statement, rows, column)}`);
  const unheld =
    yieldTo === undefined
      ? ""
      : ` AND pg_try_advisory_xact_lock_shared(hashtextextended(${statement.add(yieldTo, "text")}, 0))`;
  return `UPDATE runs SET ${assigned.join(", ")}, head_hash = ${statement.add(rows.head.head_hash, "text")}
    WHERE ${KEY} AND head_hash = ${statement.add(plannedOn, "text")}${unheld} RETURNING 1`;
}

function headValue(statement: Statement, rows: RunRows, column: (typeof HEAD_COLUMNS)[number]): string {
  const value = rows.head[column];
  return statement.add(value, typeof value === "number" ? "integer" : "text");
}
