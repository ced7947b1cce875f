import type { OnePerTriggerKind, RecordKind, RunKey, StoredReceipt } from "../../core/run/store.js";
import type { StoredHead } from "./head.js";
import type { ChainedRecord, Lookups, TriggerListEntry } from "./records.js";

/*
 * What a run-state backend supplies to the store every backend shares (`ChainedRunStore`, run-store.ts). A
 * backend holds rows and makes writes atomic; it decides nothing about what they hold. The shared layer encodes
 * and chains records, computes head rows and their checksums, checks a commit's head version, and verifies
 * everything read back (verified-log.ts), so a backend's reads are untrusted and its writes are planned for it.
 *
 * A backend supplies:
 * - raw reads: a run's head row (`find`), its records and trigger list (`source`), its receipts, every run's key;
 * - `snapshot`: several reads over one consistent view of the store (a read transaction);
 * - `insert`: a new run's rows, all or nothing, refused with `run_exists` when the key is taken;
 * - `append`: inside its own write transaction, under whatever serialises writers on one run, re-reads the run's
 *   head and hands it to `plan`, which checks the version the caller read (`StaleRunVersionError` otherwise) and
 *   returns the rows to write; writes them all or nothing, and settles only once they are durable;
 * - uniqueness guards as the final fence, whatever else serialises writers: one record per (run, position) and
 *   per (run, kind, seq), one trigger-list entry per (run, kind, trigger id) (a second one fails the write with
 *   `duplicateTriggerError`, records.ts).
 *
 * Reads are synchronous (the SQLite driver's, and the memory store's); `append` and `insert` may settle later.
 */

/** A record row as a backend reads it back: every column untrusted. */
export interface StoredRecord extends Lookups {
  position: number;
  kind: string;
  seq: number;
  record_json: unknown;
  record_sha256: string;
  prev_hash: string;
}

/** A trigger-list row as a backend reads it back. */
export interface StoredTriggerEntry {
  kind: string;
  trigger_id: string;
  seq: number;
}

/** The stored form of a record just chained, as a backend keeps it and reads it back. */
export function storedForm(record: ChainedRecord): StoredRecord & { record_json: Uint8Array } {
  return {
    position: record.position,
    kind: record.kind,
    seq: record.seq,
    trigger_id: record.trigger_id,
    decision_id: record.decision_id,
    submission_id: record.submission_id,
    record_json: record.bytes,
    record_sha256: record.sha256,
    prev_hash: record.prevHash,
  };
}

/** The raw reads of one run's records. Results may be anything: the caller verifies them. */
export interface RunLogSource {
  atPosition(position: number): StoredRecord | undefined;
  /** The `prev_hash` column of the record at `position` (the link of the record before it). */
  prevHashAt(position: number): string | undefined;
  bySeq(kind: RecordKind, seq: number): StoredRecord | undefined;
  /** Through the lookup index: the first record of `kind` naming `triggerId` with a seq up to `maxSeq`. */
  firstByTrigger(kind: OnePerTriggerKind, triggerId: string, maxSeq: number): StoredRecord | undefined;
  /** From the trigger list, kept apart from the lookup index: the seq of that record, whatever its seq. */
  listedTrigger(kind: OnePerTriggerKind, triggerId: string): number | undefined;
  /** Packets naming the decision with a packet seq up to `maxSeq`, in seq order. */
  packetsOf(decisionId: string, maxSeq: number): StoredRecord[];
  /** The newest submission with this id and a seq up to `maxSeq`. */
  lastSubmission(submissionId: string, maxSeq: number): StoredRecord | undefined;
  /** Records of `kind` with a seq up to `maxSeq`, in seq order. */
  upToSeq(kind: RecordKind, maxSeq: number): StoredRecord[];
  /** Every record of the run in position order. */
  wholeLog(): StoredRecord[];
  /** Every trigger-list row of the run. */
  triggerList(): StoredTriggerEntry[];
}

/** A run's action receipts as a backend reads them, each checked against its own stored hash (or never stored). */
export interface RunReceipts {
  last(): StoredReceipt | undefined;
  ofDecision(decisionId: string): StoredReceipt | undefined;
  /** Every receipt of the run in issue order. */
  all(): StoredReceipt[];
}

/** A run as a backend finds it: the backend's own reference to it, and its head row as stored. */
export interface FoundRun<Ref> {
  ref: Ref;
  head: StoredHead;
}

/** Rows to write for a new run or an append: the new head row, the records, their trigger-list entries, receipts. */
export interface RunRows {
  head: StoredHead;
  records: readonly ChainedRecord[];
  listed: readonly TriggerListEntry[];
  receipts: readonly StoredReceipt[];
}

/** An append planned against a run's head as the backend read it: the run it goes to, and the rows to write. */
export interface PlannedAppend<Ref> {
  ref: Ref;
  rows: RunRows;
}

export interface RunBackend<Ref> {
  find(key: RunKey): FoundRun<Ref> | undefined;
  /** Every stored run, in the order they were created. */
  keys(): RunKey[];
  source(ref: Ref): RunLogSource;
  receipts(ref: Ref, key: RunKey): RunReceipts;
  /** Runs `work`, whose reads must see one consistent state of the store. */
  snapshot<T>(work: () => T): T;
  /** Stores a new run's rows, all or nothing; `run_exists` when the key is taken. */
  insert(key: RunKey, rows: RunRows): Promise<void>;
  /** Re-reads the run in a write transaction, writes the rows `plan` returns for it, settles once durable. */
  append(key: RunKey, plan: (found: FoundRun<Ref> | undefined) => PlannedAppend<Ref>): Promise<void>;
  ready(): Promise<boolean>;
}
