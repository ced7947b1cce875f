import { z } from "zod";
import type { StoredReceipt } from "../../core/run/store.js";
import { sha256Hex } from "../../json/hash.js";
import { isJsonObject } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import { decodeVerified, storeCorrupt } from "../stored-bytes.js";
import type { SqliteDatabase, Statement } from "./database.js";

const MAX_RECEIPT_BYTES = 65_536;

function isStoredReceipt(value: unknown): value is StoredReceipt {
  return isJsonObject(value) && typeof value.decision_id === "string" && typeof value.receipt_sha256 === "string";
}

const Receipt = z.custom<StoredReceipt>(isStoredReceipt, "expected an action receipt");

interface ReceiptRow {
  receipt_json: Uint8Array;
  row_sha256: string;
}

/**
 * A run's action receipts in the `action_receipts` table: written in the same transaction as the decision they are
 * bound to, read back as untrusted (each row's stored bytes must match the sha256 kept beside them).
 */
export class SqliteReceipts {
  private readonly insertRow: Statement;
  private readonly lastRow: Statement<ReceiptRow>;
  private readonly byDecision: Statement<ReceiptRow>;
  private readonly allRows: Statement<ReceiptRow>;

  constructor(db: SqliteDatabase) {
    this.insertRow = db.prepare(
      `INSERT INTO action_receipts (run_pk, seq, decision_id, receipt_json, row_sha256)
       VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM action_receipts WHERE run_pk = ?), ?, ?, ?)`,
    );
    const select = "SELECT receipt_json, row_sha256 FROM action_receipts WHERE run_pk = ?";
    this.lastRow = db.prepare(`${select} ORDER BY seq DESC LIMIT 1`);
    this.byDecision = db.prepare(`${select} AND decision_id = ? ORDER BY seq LIMIT 1`);
    this.allRows = db.prepare(`${select} ORDER BY seq`);
  }

  /** Inserts receipts; call inside the transaction that commits their decisions. */
  insert(runPk: number, receipts: readonly StoredReceipt[]): void {
    for (const receipt of receipts) {
      const bytes = Buffer.from(canonicalJson(receipt), "utf8");
      this.insertRow.run(runPk, runPk, receipt.decision_id, bytes, sha256Hex(bytes));
    }
  }

  last(runPk: number, run: string): StoredReceipt | undefined {
    return this.decoded(this.lastRow.get(runPk), run);
  }

  ofDecision(runPk: number, decisionId: string, run: string): StoredReceipt | undefined {
    return this.decoded(this.byDecision.get(runPk, decisionId), run);
  }

  all(runPk: number, run: string): StoredReceipt[] {
    return this.allRows.all(runPk).map((row) => this.decoded(row, run) as StoredReceipt);
  }

  private decoded(row: ReceiptRow | undefined, run: string): StoredReceipt | undefined {
    if (row === undefined) return undefined;
    return decodeVerified(Receipt, row.receipt_json, row.row_sha256, MAX_RECEIPT_BYTES, (what) =>
      storeCorrupt("run state", run, `action receipt: ${what}`),
    );
  }
}
