import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { StoredReceipt } from "../core/run/store.js";
import { canonicalJson } from "../json/write.js";

/** `[runtime_actions] receipt_log`: every committed receipt appended as one canonical JSON line. */
export interface ReceiptLog {
  append(receipt: StoredReceipt): void;
}

export function receiptLog(path: string): ReceiptLog {
  mkdirSync(dirname(path), { recursive: true });
  return {
    append(receipt) {
      appendFileSync(path, `${canonicalJson(receipt)}\n`);
    },
  };
}
