import { z } from "zod";
import type { StoredReceipt } from "../../core/run/store.js";
import { sha256Hex } from "../../json/hash.js";
import { isJsonObject } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import { decodeVerified, storeCorrupt } from "../stored-bytes.js";

/*
 * How every backend keeps a run's action receipts: canonical JSON beside its sha256, read back as untrusted.
 * Receipts are not part of the run's hash chain (their own `previous_hash` chain is checked with the runpack).
 */

const MAX_RECEIPT_BYTES = 65_536;

function isStoredReceipt(value: unknown): value is StoredReceipt {
  return isJsonObject(value) && typeof value.decision_id === "string" && typeof value.receipt_sha256 === "string";
}

const Receipt = z.custom<StoredReceipt>(isStoredReceipt, "expected an action receipt");

/** A receipt row as stored: the receipt's canonical bytes and their sha256. */
export interface ReceiptRow {
  receipt_json: Uint8Array;
  row_sha256: string;
}

export function encodeReceipt(receipt: StoredReceipt): ReceiptRow & { decision_id: string } {
  const bytes = new Uint8Array(Buffer.from(canonicalJson(receipt), "utf8"));
  return { decision_id: receipt.decision_id, receipt_json: bytes, row_sha256: sha256Hex(bytes) };
}

/** A stored receipt row of the run named `run`, checked against its own hash; a mismatch fails closed. */
export function decodeReceipt(row: ReceiptRow, run: string): StoredReceipt {
  return decodeVerified(Receipt, row.receipt_json, row.row_sha256, MAX_RECEIPT_BYTES, (what) =>
    storeCorrupt("run state", run, `action receipt: ${what}`),
  );
}
