import type { OnePerTriggerKind, RecordKind, RunKey, RunLookahead, StoredReceipt } from "../../core/run/store.js";
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
 * - `snapshot`: a run's head, its whole log and its trigger list read in one consistent view (a read transaction).
 *   Every other read is bounded by a head the caller read first (a seq or position up to its counts), and records
 *   are never changed once written, so those need no transaction: a commit landing meanwhile adds nothing they see;
 * - `insert`: a new run's rows, all or nothing, refused with `run_exists` when the key is taken;
 * - `append`: hands the run's head to `plan` (the head the caller's session read, when given, or else the head as
 *   read now), which checks the version the caller read (`StaleRunVersionError` otherwise) and returns the rows to
 *   write; writes them all or nothing only if, inside its write transaction and under whatever serialises writers
 *   on one run, the head is still the one planned on (`StaleRunVersionError` otherwise), and settles only once they
 *   are durable;
 * - optionally `exclusive`: holds a run against the writes of other processes while a step that lost a race runs
 *   again (`RunStateStore.exclusive`). Without it (memory; SQLite, whose processes sharing a file on one machine
 *   are not held apart) the step runs again at once;
 * - uniqueness guards as the final fence, whatever else serialises writers: one record per (run, position) and
 *   per (run, kind, seq), one trigger-list entry per (run, kind, trigger id) (a second one fails the write with
 *   `duplicateTriggerError`, records.ts).
 *
 * Every read returns a promise (PostgreSQL answers over the network); SQLite and memory resolve theirs at once.
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
  atPosition(position: number): Promise<StoredRecord | undefined>;
  /** The `prev_hash` column of the record at `position` (the link of the record before it). */
  prevHashAt(position: number): Promise<string | undefined>;
  bySeq(kind: RecordKind, seq: number): Promise<StoredRecord | undefined>;
  /** Through the lookup index: the first record of `kind` naming `triggerId` with a seq up to `maxSeq`. */
  firstByTrigger(kind: OnePerTriggerKind, triggerId: string, maxSeq: number): Promise<StoredRecord | undefined>;
  /** From the trigger list, kept apart from the lookup index: the seq of that record, whatever its seq. */
  listedTrigger(kind: OnePerTriggerKind, triggerId: string): Promise<number | undefined>;
  /** Packets naming the decision with a packet seq up to `maxSeq`, in seq order. */
  packetsOf(decisionId: string, maxSeq: number): Promise<StoredRecord[]>;
  /** The newest submission with this id and a seq up to `maxSeq`. */
  lastSubmission(submissionId: string, maxSeq: number): Promise<StoredRecord | undefined>;
  /** Records of `kind` with a seq up to `maxSeq`, in seq order. */
  upToSeq(kind: RecordKind, maxSeq: number): Promise<StoredRecord[]>;
}

/** The synchronous form of a read interface, for drivers that answer at once (SQLite's). */
export type Synchronous<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : T[K];
};

/** The reads of a synchronous source, as the promises the shared layer awaits. */
export function resolvedSource(source: Synchronous<RunLogSource>): RunLogSource {
  return {
    atPosition: async (position) => source.atPosition(position),
    prevHashAt: async (position) => source.prevHashAt(position),
    bySeq: async (kind, seq) => source.bySeq(kind, seq),
    firstByTrigger: async (kind, triggerId, maxSeq) => source.firstByTrigger(kind, triggerId, maxSeq),
    listedTrigger: async (kind, triggerId) => source.listedTrigger(kind, triggerId),
    packetsOf: async (decisionId, maxSeq) => source.packetsOf(decisionId, maxSeq),
    lastSubmission: async (submissionId, maxSeq) => source.lastSubmission(submissionId, maxSeq),
    upToSeq: async (kind, maxSeq) => source.upToSeq(kind, maxSeq),
  };
}

/** A run's action receipts as a backend reads them, each checked against its own stored hash (or never stored). */
export interface RunReceipts {
  last(): Promise<StoredReceipt | undefined>;
  ofDecision(decisionId: string): Promise<StoredReceipt | undefined>;
  /** Every receipt of the run in issue order. */
  all(): Promise<StoredReceipt[]>;
}

/** A run as a backend finds it: the backend's own reference to it, and its head row as stored. */
export interface FoundRun<Ref> {
  ref: Ref;
  head: StoredHead;
}

/** A run's head row, every record of its log in position order and every trigger-list row, as of one moment. */
export interface RunSnapshot<Ref> extends FoundRun<Ref> {
  log: StoredRecord[];
  triggerList: StoredTriggerEntry[];
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
  /** The run's head; `lookahead` names lookups the backend may read with it, to answer them without a round trip. */
  find(key: RunKey, lookahead?: RunLookahead): Promise<FoundRun<Ref> | undefined>;
  /** Every stored run, in the order they were created. */
  keys(): Promise<RunKey[]>;
  source(ref: Ref): RunLogSource;
  receipts(ref: Ref, key: RunKey): RunReceipts;
  /** The run's head, whole log and trigger list in one consistent view; `undefined` when there is no such run. */
  snapshot(key: RunKey): Promise<RunSnapshot<Ref> | undefined>;
  /** Stores a new run's rows, all or nothing; `run_exists` when the key is taken. */
  insert(key: RunKey, rows: RunRows): Promise<void>;
  /** Writes the rows `plan` returns for `basis` (or the head as read now) if still the run's head; once durable. */
  append(
    key: RunKey,
    plan: (found: FoundRun<Ref> | undefined) => PlannedAppend<Ref>,
    basis?: FoundRun<Ref>,
  ): Promise<void>;
  /** Runs `work` holding the run against other processes' writes; absent, `work` runs at once. */
  exclusive?<T>(key: RunKey, work: () => Promise<T>): Promise<T>;
  ready(): Promise<boolean>;
}
