import type { DecisionRecord } from "./schema.js";
import type { StoredReceipt } from "./store.js";

/** What a receipt issuer learns about one new decision. */
export interface DecisionFacts {
  tenant_id: bigint;
  namespace_id: bigint;
  run_id: string;
  scenario_id: string;
  decision: DecisionRecord;
  /** Evidence behind this decision failed an integrity check: an anchor, a signature or an evidence hash. */
  integrityFailure: boolean;
}

/**
 * Turns each new decision into an action receipt (the runtime action layer, src/actions). Receipts are committed
 * with their decision, chained per run through `previous`, and never part of the reference's run state.
 */
export interface ReceiptIssuer {
  issue(facts: DecisionFacts, previous: StoredReceipt | undefined): StoredReceipt;
}
