import { setImmediate } from "node:timers/promises";
import type { PacketRecord, SubmissionRecord } from "../../core/run/schema.js";
import {
  type AppendedRecords,
  emptyAppendedRecords,
  type LogCounts,
  logOf,
  type OnePerTriggerKind,
  RECORD_KIND_ORDER,
  RECORD_KINDS,
  type RecordKind,
  type RecordOf,
  type RunKey,
  runKeyText,
} from "../../core/run/store.js";
import { decodeVerified, storeCorrupt } from "../stored-bytes.js";
import type { RunLogSource, StoredRecord, StoredTriggerEntry } from "./backend.js";
import type { KnownTail } from "./known-tails.js";
import {
  genesisHash,
  isOnePerTrigger,
  LOG_NAMES,
  linkHash,
  lookupsOf,
  MAX_STATE_BYTES,
  seqOf,
  totalOf,
  zeroCounts,
} from "./records.js";

/*
 * Verified reads of one run's log, the same for every backend: a backend supplies raw rows (`RunLogSource`), and
 * nothing it returns is used before it checks out. Every record served is checked in itself (hash, size, schema,
 * lookup columns) and in its place in the chain (its link hash must be what the next record, or the head, says
 * it is: one more row read, whatever the run's length). A trigger-id lookup is answered only when the lookup index
 * and the run's separate trigger list agree, so a damaged index cannot make a decided trigger look new.
 */

/** Records verified between two turns given back to the event loop (a few milliseconds of decoding and hashing). */
const WALK_SLICE = 256;

/** How far a read view of a run reaches: the head's counts and the link hash of its newest record. */
export interface LogView {
  counts: LogCounts;
  chainTip: string;
}

/** What a full verification of a run found (it throws on the first problem, so this is the healthy case). */
export interface RunCheck {
  records: number;
}

interface LogEntry {
  row: StoredRecord;
  kind: RecordKind;
  record: RecordOf<RecordKind>;
}

export class VerifiedRunLog {
  constructor(
    private readonly source: RunLogSource,
    private readonly key: RunKey,
    private readonly view: LogView,
  ) {}

  /**
   * The newest record must exist, check out and end the chain the head points to (catches a cut-off log). When it
   * is exactly `known` (every column and byte equal, and the head names the same chain tip), it was checked or
   * written by this process already and is not decoded again. Returns the tail as verified, for next time.
   */
  async verifyTail(known?: KnownTail): Promise<KnownTail | undefined> {
    const total = totalOf(this.view.counts);
    if (total === 0) {
      if (this.view.chainTip !== genesisHash(this.key)) throw this.corrupt("chain tip does not match an empty log");
      return undefined;
    }
    const tail = await this.source.atPosition(total);
    if (tail === undefined) throw this.corrupt(`log truncated: record ${total} missing`);
    if (known !== undefined && known.chainTip === this.view.chainTip && sameRow(known.row, tail)) return known;
    const kind = this.kindOf(tail);
    if (tail.seq !== this.countOf(kind)) throw this.corrupt(`record ${total}: not the last ${kind}`);
    this.verifyRecord(tail, kind);
    if (linkHash(tail.prev_hash, tail) !== this.view.chainTip) {
      throw this.corrupt(`record ${total}: chain tip does not match the head`);
    }
    return { chainTip: this.view.chainTip, row: { ...tail, record_json: tail.record_json as Uint8Array } };
  }

  /**
   * The first trigger or decision record naming `triggerId`, or undefined when the run has none. The index lookup
   * must agree with the trigger list: a record one of them finds and the other does not (an index entry lost, a
   * lookup column edited) fails closed, so a trigger already decided is never taken for a new one.
   */
  async firstForTrigger<K extends OnePerTriggerKind>(kind: K, triggerId: string): Promise<RecordOf<K> | undefined> {
    const maxSeq = this.countOf(kind);
    const [indexed, listedSeq] = await Promise.all([
      this.source.firstByTrigger(kind, triggerId, maxSeq),
      this.source.listedTrigger(kind, triggerId),
    ]);
    const listed = listedSeq !== undefined && listedSeq <= maxSeq ? listedSeq : undefined;
    if (indexed?.seq !== listed) {
      const found = (seq: number | undefined) => (seq === undefined ? `no ${kind}` : `${kind} ${seq}`);
      throw this.corrupt(
        `trigger ${JSON.stringify(triggerId)}: the lookup index finds ${found(indexed?.seq)}, the trigger list ${found(listed)}`,
      );
    }
    return indexed === undefined ? undefined : this.served(indexed, kind);
  }

  async lastOf<K extends RecordKind>(kind: K): Promise<RecordOf<K> | undefined> {
    const seq = this.countOf(kind);
    if (seq === 0) return undefined;
    const row = await this.source.bySeq(kind, seq);
    if (row === undefined) throw this.corrupt(`log truncated: ${kind} ${seq} missing`);
    return this.served(row, kind);
  }

  async packetsOf(decisionId: string): Promise<PacketRecord[]> {
    return this.servedAll(await this.source.packetsOf(decisionId, this.view.counts.packets), "packet");
  }

  async submission(submissionId: string): Promise<SubmissionRecord | undefined> {
    const row = await this.source.lastSubmission(submissionId, this.view.counts.submissions);
    return row === undefined ? undefined : this.served(row, "submission");
  }

  async allOf<K extends RecordKind>(kind: K): Promise<RecordOf<K>[]> {
    const maxSeq = this.countOf(kind);
    const rows = await this.source.upToSeq(kind, maxSeq);
    if (rows.length !== maxSeq) throw this.corrupt(`log truncated: ${rows.length} of ${maxSeq} ${kind} records`);
    return this.servedAll(rows, kind);
  }

  /**
   * The whole run from its log (read in one view with the head this log was made with), verifying every record,
   * the order of positions and seqs, and the chain.
   */
  async loadAll(log: StoredRecord[]): Promise<AppendedRecords> {
    return (await this.walk(log)).logs;
  }

  /**
   * Everything `loadAll` checks, plus every lookup path a call may take: each record is found through the seq
   * index, each trigger and decision through the trigger-id index and the trigger list (which must hold nothing
   * else), each decision's packets and each submission through theirs. For `store check` and the startup check.
   */
  async verifyAll(snapshot: { log: StoredRecord[]; triggerList: StoredTriggerEntry[] }): Promise<RunCheck> {
    const { entries } = await this.walk(snapshot.log);
    for (const kind of RECORD_KIND_ORDER) {
      const found = (await this.source.upToSeq(kind, this.countOf(kind))).map((row) => row.position);
      const expected = entries.filter((entry) => entry.kind === kind).map((entry) => entry.row.position);
      if (found.join() !== expected.join()) throw this.corrupt(`the seq index of ${kind} records is incomplete`);
    }
    await this.verifyTriggerLookups(entries, snapshot.triggerList);
    await this.verifyPacketLookups(entries);
    await this.verifySubmissionLookups(entries);
    return { records: entries.length };
  }

  /**
   * Verifies rows read in position order from the first record on; returns the verified records and logs. A long
   * run gives the event loop back every `WALK_SLICE` records, so exporting it does not stall other requests.
   */
  private async walk(rows: StoredRecord[]) {
    const logs = emptyAppendedRecords();
    const entries: LogEntry[] = [];
    const seen = zeroCounts();
    let chain = genesisHash(this.key);
    for (const [index, row] of rows.entries()) {
      if (index % WALK_SLICE === WALK_SLICE - 1) await setImmediate();
      if (row.position !== index + 1) throw this.corrupt(`log truncated: record ${index + 1} missing`);
      if (row.prev_hash !== chain) throw this.corrupt(`record ${row.position}: chain link broken`);
      const kind = this.kindOf(row);
      const log = RECORD_KINDS[kind].log;
      seen[log]++;
      if (row.seq !== seen[log]) throw this.corrupt(`record ${row.position}: ${kind} ${row.seq} out of order`);
      const record = this.verifyRecord(row, kind);
      logOf(logs, kind).push(record);
      entries.push({ row, kind, record });
      chain = linkHash(chain, row);
    }
    for (const log of LOG_NAMES) {
      if (seen[log] !== this.view.counts[log]) {
        throw this.corrupt(`log truncated: ${seen[log]} of ${this.view.counts[log]} ${log} records`);
      }
    }
    if (chain !== this.view.chainTip) throw this.corrupt("chain tip does not match the head");
    return { entries, logs };
  }

  /** Each trigger and decision is the one both the index and the trigger list name; the list names nothing else. */
  private async verifyTriggerLookups(entries: LogEntry[], listed: StoredTriggerEntry[]): Promise<void> {
    const firsts = new Map<string, number>();
    for (const { row, kind } of entries) {
      if (!isOnePerTrigger(kind) || row.trigger_id === null) continue;
      const trigger = JSON.stringify(row.trigger_id);
      const key = `${kind}\n${row.trigger_id}`;
      if (firsts.has(key)) throw this.corrupt(`record ${row.position}: a second ${kind} for trigger ${trigger}`);
      firsts.set(key, row.seq);
      const indexed = await this.source.firstByTrigger(kind, row.trigger_id, this.countOf(kind));
      if (indexed?.position !== row.position) {
        throw this.corrupt(`record ${row.position}: trigger ${trigger} not found through the lookup index`);
      }
      if ((await this.source.listedTrigger(kind, row.trigger_id)) !== row.seq) {
        throw this.corrupt(`record ${row.position}: trigger ${trigger} not in the trigger list`);
      }
    }
    const stray = listed.find((entry) => firsts.get(`${entry.kind}\n${entry.trigger_id}`) !== entry.seq);
    if (stray !== undefined || listed.length !== firsts.size) {
      const what =
        stray === undefined ? "entries" : `${stray.kind} ${stray.seq} of trigger ${JSON.stringify(stray.trigger_id)}`;
      throw this.corrupt(`the trigger list holds ${what} the log does not`);
    }
  }

  private async verifyPacketLookups(entries: LogEntry[]): Promise<void> {
    const byDecision = new Map<string, number[]>();
    for (const { row, kind, record } of entries) {
      if (kind !== "packet") continue;
      const decisionId = (record as PacketRecord).decision_id;
      byDecision.set(decisionId, [...(byDecision.get(decisionId) ?? []), row.position]);
    }
    for (const [decisionId, positions] of byDecision) {
      const found = (await this.source.packetsOf(decisionId, this.view.counts.packets)).map((row) => row.position);
      if (found.join() !== positions.join()) {
        throw this.corrupt(`packets of ${JSON.stringify(decisionId)}: not all found through the lookup index`);
      }
    }
  }

  private async verifySubmissionLookups(entries: LogEntry[]): Promise<void> {
    const newest = new Map<string, number>();
    for (const { row, kind } of entries) {
      if (kind === "submission" && row.submission_id !== null) newest.set(row.submission_id, row.position);
    }
    for (const [submissionId, position] of newest) {
      const found = await this.source.lastSubmission(submissionId, this.view.counts.submissions);
      if (found?.position !== position) {
        throw this.corrupt(`submission ${JSON.stringify(submissionId)}: not found through the lookup index`);
      }
    }
  }

  /** A record about to be served: checked in itself, and its link to the chain. */
  private async served<K extends RecordKind>(row: StoredRecord, kind: K): Promise<RecordOf<K>> {
    const record = this.verifyRecord(row, kind);
    await this.verifyLink(row, undefined);
    return record;
  }

  /** Records about to be served in seq order: a record's successor, when among them, gives its link. */
  private async servedAll<K extends RecordKind>(rows: StoredRecord[], kind: K): Promise<RecordOf<K>[]> {
    const records: RecordOf<K>[] = [];
    for (const [index, row] of rows.entries()) {
      records.push(this.verifyRecord(row, kind));
      await this.verifyLink(row, rows[index + 1]);
    }
    return records;
  }

  /**
   * The record's link hash must be the `prev_hash` of the record after it, or the head's chain tip for the newest:
   * a record rewritten in place, even with its own hash recomputed, no longer matches what the chain says of it.
   */
  private async verifyLink(row: StoredRecord, next: StoredRecord | undefined): Promise<void> {
    const total = totalOf(this.view.counts);
    if (row.position > total) throw this.corrupt(`record ${row.position}: beyond the head`);
    const following = row.position + 1;
    const expected =
      row.position === total
        ? this.view.chainTip
        : next?.position === following
          ? next.prev_hash
          : await this.source.prevHashAt(following);
    if (expected === undefined) throw this.corrupt(`log truncated: record ${following} missing`);
    if (linkHash(row.prev_hash, row) !== expected) throw this.corrupt(`record ${row.position}: chain link broken`);
  }

  /** How many records of `kind` the view reaches. */
  private countOf(kind: RecordKind): number {
    return this.view.counts[RECORD_KINDS[kind].log];
  }

  private kindOf(row: StoredRecord): RecordKind {
    const kind = RECORD_KIND_ORDER.find((candidate) => candidate === row.kind);
    if (kind === undefined) throw this.corrupt(`record ${row.position}: unknown kind ${JSON.stringify(row.kind)}`);
    return kind;
  }

  /** Hash, size and schema of the stored bytes, and agreement of the lookup columns with the record. */
  private verifyRecord<K extends RecordKind>(row: StoredRecord, kind: K): RecordOf<K> {
    const where = `record ${row.position} (${kind} ${row.seq})`;
    const fail = (what: string) => this.corrupt(`${where}: ${what}`);
    if (row.kind !== kind) throw fail(`stored as ${row.kind}`);
    const record = decodeVerified(RECORD_KINDS[kind].schema, row.record_json, row.record_sha256, MAX_STATE_BYTES, fail);
    const expected = lookupsOf(kind, record);
    const recordSeq = seqOf(kind, record);
    if (
      expected.trigger_id !== row.trigger_id ||
      expected.decision_id !== row.decision_id ||
      expected.submission_id !== row.submission_id ||
      (recordSeq !== null && recordSeq !== row.seq)
    ) {
      throw fail("index columns do not match the record");
    }
    return record;
  }

  private corrupt(what: string) {
    return storeCorrupt("run state", runKeyText(this.key), what);
  }
}

/** Whether a stored row is exactly a remembered one: every column, and the record's bytes. */
function sameRow(known: StoredRecord & { record_json: Uint8Array }, row: StoredRecord): boolean {
  return (
    row.position === known.position &&
    row.kind === known.kind &&
    row.seq === known.seq &&
    row.trigger_id === known.trigger_id &&
    row.decision_id === known.decision_id &&
    row.submission_id === known.submission_id &&
    row.record_sha256 === known.record_sha256 &&
    row.prev_hash === known.prev_hash &&
    row.record_json instanceof Uint8Array &&
    Buffer.compare(row.record_json, known.record_json) === 0
  );
}
