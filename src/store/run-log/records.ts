import { ControlPlaneError, InternalError } from "../../core/errors.js";
import {
  type AppendedRecords,
  type LogCounts,
  type LogName,
  logOf,
  type OnePerTriggerKind,
  RECORD_KIND_ORDER,
  RECORD_KINDS,
  type RecordKind,
  type RecordOf,
  type RunKey,
  runKeyText,
} from "../../core/run/store.js";
import { sha256Hex } from "../../json/hash.js";
import { canonicalJson } from "../../json/write.js";
import { storeCorrupt } from "../stored-bytes.js";

/*
 * How every run-state backend stores a run's records: canonical JSON with its sha256, a place in the run's log
 * (`position` over all kinds, `seq` per kind), lookup columns, and a hash chain per run. Backends keep these rows
 * as they are; the verification in `verified-log.ts` reads them back as untrusted. What differs between kinds
 * comes from the table of record kinds (`RECORD_KINDS` in src/core/run/store.ts).
 */

/** The largest stored record (the reference's `MAX_STATE_BYTES`). */
export const MAX_STATE_BYTES = 16 * 1024 * 1024;

/** The names of a run's logs, in the order a commit appends to them. */
export const LOG_NAMES: readonly LogName[] = RECORD_KIND_ORDER.map((kind) => RECORD_KINDS[kind].log);

/** Indexed columns that records are looked up by (the ids of the kinds table; null where a kind has none). */
export interface Lookups {
  trigger_id: string | null;
  decision_id: string | null;
  submission_id: string | null;
}

/** A record encoded for storage, before it has a place in a run's log. */
export interface EncodedRecord extends Lookups {
  kind: RecordKind;
  recordSeq: number | null;
  bytes: Buffer;
  sha256: string;
}

/** A record with its place in the log and its chain link, ready to store. */
export interface ChainedRecord extends EncodedRecord {
  position: number;
  seq: number;
  prevHash: string;
}

/**
 * One entry of a run's trigger list: the seq of the record of `kind` that a trigger id names. Backends keep the
 * list apart from the lookup index, as a second way to find a trigger's records (see `VerifiedRunLog`).
 */
export interface TriggerListEntry {
  kind: OnePerTriggerKind;
  trigger_id: string;
  seq: number;
}

function countsBy(count: (log: LogName) => number): LogCounts {
  const counts = {} as LogCounts;
  for (const log of LOG_NAMES) counts[log] = count(log);
  return counts;
}

export function zeroCounts(): LogCounts {
  return countsBy(() => 0);
}

/** Just the counts of an object that holds them among other fields (a head row). */
export function countsIn(fields: LogCounts): LogCounts {
  return countsBy((log) => fields[log]);
}

export function totalOf(counts: LogCounts): number {
  return LOG_NAMES.reduce((sum, log) => sum + counts[log], 0);
}

export function isOnePerTrigger(kind: RecordKind): kind is OnePerTriggerKind {
  return RECORD_KINDS[kind].onePerTrigger === true;
}

export function lookupsOf<K extends RecordKind>(kind: K, record: RecordOf<K>): Lookups {
  const ids = RECORD_KINDS[kind].ids(record);
  return {
    trigger_id: ids.trigger_id ?? null,
    decision_id: ids.decision_id ?? null,
    submission_id: ids.submission_id ?? null,
  };
}

/** The seq a record carries in its own JSON, for the kinds that carry one. */
export function seqOf<K extends RecordKind>(kind: K, record: RecordOf<K>): number | null {
  const seq = RECORD_KINDS[kind].seq;
  return seq === undefined ? null : Number(seq(record));
}

/** Canonical bytes of every appended record, in log order (the kinds table's order). */
export function encodeAppended(appended: AppendedRecords): EncodedRecord[] {
  const encoded: EncodedRecord[] = [];
  for (const kind of RECORD_KIND_ORDER) encodeLog(kind, logOf(appended, kind), encoded);
  return encoded;
}

function encodeLog<K extends RecordKind>(kind: K, records: readonly RecordOf<K>[], into: EncodedRecord[]): void {
  for (const record of records) {
    const bytes = Buffer.from(canonicalJson(record), "utf8");
    if (bytes.length > MAX_STATE_BYTES) {
      throw new ControlPlaneError(
        "record_too_large",
        `run state record exceeds size limit: ${bytes.length} bytes (max ${MAX_STATE_BYTES})`,
      );
    }
    into.push({ kind, recordSeq: seqOf(kind, record), bytes, sha256: sha256Hex(bytes), ...lookupsOf(kind, record) });
  }
}

/** Gives each record its position, seq and chain link after a log at `counts` ending in `chainTip`. */
export function chainRecords(counts: LogCounts, chainTip: string, encoded: EncodedRecord[], key: RunKey) {
  const next = { ...counts };
  let position = totalOf(counts);
  let tip = chainTip;
  const records = encoded.map((record): ChainedRecord => {
    const log = RECORD_KINDS[record.kind].log;
    next[log]++;
    if (record.recordSeq !== null && record.recordSeq !== next[log]) {
      throw new InternalError(`${record.kind} seq ${record.recordSeq} appended as ${next[log]} in ${runKeyText(key)}`);
    }
    // Spelled out: on Node 20 a spread that adds members costs microseconds per object, and this runs per record.
    const chained: ChainedRecord = {
      kind: record.kind,
      recordSeq: record.recordSeq,
      bytes: record.bytes,
      sha256: record.sha256,
      trigger_id: record.trigger_id,
      decision_id: record.decision_id,
      submission_id: record.submission_id,
      position: ++position,
      seq: next[log],
      prevHash: tip,
    };
    tip = linkHash(tip, {
      position: chained.position,
      kind: record.kind,
      seq: chained.seq,
      record_sha256: record.sha256,
    });
    return chained;
  });
  return { records, counts: next, chainTip: tip };
}

/** The trigger-list entries of newly chained records. */
export function triggerListEntries(records: readonly ChainedRecord[]): TriggerListEntry[] {
  const entries: TriggerListEntry[] = [];
  for (const record of records) {
    if (isOnePerTrigger(record.kind) && record.trigger_id !== null) {
      entries.push({ kind: record.kind, trigger_id: record.trigger_id, seq: record.seq });
    }
  }
  return entries;
}

/**
 * A commit would record a second trigger or decision for a trigger id the run already has one for. The control
 * plane replays instead, so this means its idempotency lookup was wrong: nothing is committed.
 */
export function duplicateTriggerError(key: RunKey, entry: TriggerListEntry): ControlPlaneError {
  const what = `refused a second ${entry.kind} for trigger ${JSON.stringify(entry.trigger_id)}`;
  return storeCorrupt("run state", runKeyText(key), what);
}

/** The chain starts from a hash of the run key, so records cannot be moved to another run unnoticed. */
export function genesisHash(key: RunKey): string {
  return sha256Hex(`decision-gate run records v1\n${runKeyText(key)}`);
}

/** The link of one record: binds the previous link, its place in the log and the hash of its bytes. */
export function linkHash(
  prev: string,
  record: { position: number; kind: string; seq: number; record_sha256: string },
): string {
  return sha256Hex(`${prev}\n${record.position}\n${record.kind}\n${record.seq}\n${record.record_sha256}`);
}
