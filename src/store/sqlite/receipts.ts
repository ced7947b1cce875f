import type { StoredReceipt } from "../../core/run/store.js";
import { decodeReceipt, encodeReceipt, type ReceiptRow } from "../run-log/receipts.js";
import type { SqliteDatabase, Statement } from "./database.js";
import type { WriteStep } from "./writer-group.js";

const INSERT_RECEIPT = `INSERT INTO action_receipts (run_pk, seq, decision_id, receipt_json, row_sha256)
  VALUES (@run_pk, (SELECT COALESCE(MAX(seq), 0) + 1 FROM action_receipts WHERE run_pk = @run_pk), @decision_id,
    @receipt_json, @row_sha256)`;

/** The writes of receipts (their `run_pk` set by the caller), in the same transaction as the decisions they bind. */
export function receiptSteps(receipts: readonly StoredReceipt[]): Pick<WriteStep, "sql" | "params">[] {
  return receipts.map((receipt) => ({ sql: INSERT_RECEIPT, params: { ...encodeReceipt(receipt) } }));
}

/**
 * A run's action receipts in the `action_receipts` table: written with the decisions they are bound to
 * (`receiptSteps`), read back as untrusted (each row's stored bytes must match the sha256 kept beside them).
 */
export class SqliteReceipts {
  private readonly lastRow: Statement<ReceiptRow>;
  private readonly byDecision: Statement<ReceiptRow>;
  private readonly allRows: Statement<ReceiptRow>;

  constructor(db: SqliteDatabase) {
    const select = "SELECT receipt_json, row_sha256 FROM action_receipts WHERE run_pk = ?";
    this.lastRow = db.prepare(`${select} ORDER BY seq DESC LIMIT 1`);
    this.byDecision = db.prepare(`${select} AND decision_id = ? ORDER BY seq LIMIT 1`);
    this.allRows = db.prepare(`${select} ORDER BY seq`);
  }

  last(runPk: number, run: string): StoredReceipt | undefined {
    return this.decoded(this.lastRow.get(runPk), run);
  }

  ofDecision(runPk: number, decisionId: string, run: string): StoredReceipt | undefined {
    return this.decoded(this.byDecision.get(runPk, decisionId), run);
  }

  all(runPk: number, run: string): StoredReceipt[] {
    return this.allRows.all(runPk).map((row) => decodeReceipt(row, run));
  }

  private decoded(row: ReceiptRow | undefined, run: string): StoredReceipt | undefined {
    return row === undefined ? undefined : decodeReceipt(row, run);
  }
}
