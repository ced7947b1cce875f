import type { z } from "zod";
import { ControlPlaneError, InternalError } from "../../core/errors.js";
import {
  DecisionRecord,
  GateEvalRecord,
  PacketRecord,
  SubmissionRecord,
  ToolCallRecord,
  TriggerRecord,
} from "../../core/run/schema.js";
import { type AppendedRecords, type LogCounts, type RunKey, runKeyText } from "../../core/run/store.js";
import { sha256Hex } from "../../json/hash.js";
import type { JsonValue } from "../../json/value.js";
import { canonicalJson } from "../../json/write.js";
import { storeCorrupt } from "../stored-bytes.js";

/*
 * How every run-state backend stores a run's records: canonical JSON with its sha256, a place in the run's log
 * (`position` over all kinds, `seq` per kind), lookup columns, and a hash chain per run. Backends keep these rows
 * as they are; the verification in `verified-log.ts` reads them back as untrusted.
 */

/** The largest stored record (the reference's `MAX_STATE_BYTES`). */
export const MAX_STATE_BYTES = 16 * 1024 * 1024;

/** Record kinds in the order a commit appends them. */
export const RECORD_KINDS = ["trigger", "gate_eval", "decision", "packet", "submission", "tool_call"] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];
export type LogName = keyof LogCounts;

export interface RecordTypes {
  trigger: TriggerRecord;
  gate_eval: GateEvalRecord;
  decision: DecisionRecord;
  packet: PacketRecord;
  submission: SubmissionRecord;
  tool_call: ToolCallRecord;
}
export type AnyRecord = RecordTypes[RecordKind];

/** Which log each kind belongs to, and the schema its stored records must decode with. */
export const LOG_OF: { [K in RecordKind]: LogName } = {
  trigger: "triggers",
  gate_eval: "gate_evals",
  decision: "decisions",
  packet: "packets",
  submission: "submissions",
  tool_call: "tool_calls",
};
export const SCHEMA_OF: { [K in RecordKind]: z.ZodType<RecordTypes[K], unknown> } = {
  trigger: TriggerRecord,
  gate_eval: GateEvalRecord,
  decision: DecisionRecord,
  packet: PacketRecord,
  submission: SubmissionRecord,
  tool_call: ToolCallRecord,
};

/**
 * Kinds whose trigger ids are idempotency keys: a run holds at most one trigger record and one decision per
 * trigger id, and backends list them a second time, apart from the lookup index (see `TriggerListEntry`).
 */
export const KEYED_KINDS = ["trigger", "decision"] as const;
export type KeyedKind = (typeof KEYED_KINDS)[number];

/** Indexed columns that records are looked up by. */
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

/** One entry of a run's trigger list: the seq of the record of `kind` that a trigger id names. */
export interface TriggerListEntry {
  kind: KeyedKind;
  trigger_id: string;
  seq: number;
}

export function zeroCounts(): LogCounts {
  return { triggers: 0, gate_evals: 0, decisions: 0, packets: 0, submissions: 0, tool_calls: 0 };
}

export function countsIn(fields: LogCounts): LogCounts {
  const { triggers, gate_evals, decisions, packets, submissions, tool_calls } = fields;
  return { triggers, gate_evals, decisions, packets, submissions, tool_calls };
}

export function totalOf(counts: LogCounts): number {
  return RECORD_KINDS.reduce((sum, kind) => sum + counts[LOG_OF[kind]], 0);
}

export function isKeyedKind(kind: RecordKind): kind is KeyedKind {
  return kind === "trigger" || kind === "decision";
}

export function lookupsOf(kind: RecordKind, record: AnyRecord): Lookups {
  const none: Lookups = { trigger_id: null, decision_id: null, submission_id: null };
  switch (kind) {
    case "trigger":
      return { ...none, trigger_id: (record as TriggerRecord).event.trigger_id };
    case "gate_eval":
      return { ...none, trigger_id: (record as GateEvalRecord).trigger_id };
    case "decision": {
      const decision = record as DecisionRecord;
      return { ...none, trigger_id: decision.trigger_id, decision_id: decision.decision_id };
    }
    case "packet":
      return { ...none, decision_id: (record as PacketRecord).decision_id };
    case "submission":
      return { ...none, submission_id: (record as SubmissionRecord).submission_id };
    case "tool_call":
      return none;
  }
}

/** The seq a trigger or decision record carries in its own JSON (other kinds have none). */
export function seqOf(kind: RecordKind, record: AnyRecord): number | null {
  if (kind === "trigger" || kind === "decision") return Number((record as TriggerRecord | DecisionRecord).seq);
  return null;
}

/** Canonical bytes of every appended record, in log order (triggers first, tool calls last). */
export function encodeAppended(appended: AppendedRecords): EncodedRecord[] {
  const encoded: EncodedRecord[] = [];
  for (const kind of RECORD_KINDS) {
    for (const record of appended[LOG_OF[kind]] as AnyRecord[]) {
      const bytes = Buffer.from(canonicalJson(record as unknown as JsonValue), "utf8");
      if (bytes.length > MAX_STATE_BYTES) {
        throw new ControlPlaneError(
          "record_too_large",
          `run state record exceeds size limit: ${bytes.length} bytes (max ${MAX_STATE_BYTES})`,
        );
      }
      encoded.push({
        kind,
        recordSeq: seqOf(kind, record),
        bytes,
        sha256: sha256Hex(bytes),
        ...lookupsOf(kind, record),
      });
    }
  }
  return encoded;
}

/** Gives each record its position, seq and chain link after a log at `counts` ending in `chainTip`. */
export function chainRecords(counts: LogCounts, chainTip: string, encoded: EncodedRecord[], key: RunKey) {
  const next = { ...counts };
  let position = totalOf(counts);
  let tip = chainTip;
  const records = encoded.map((record): ChainedRecord => {
    const log = LOG_OF[record.kind];
    next[log]++;
    if (record.recordSeq !== null && record.recordSeq !== next[log]) {
      throw new InternalError(`${record.kind} seq ${record.recordSeq} appended as ${next[log]} in ${runKeyText(key)}`);
    }
    const chained = { ...record, position: ++position, seq: next[log], prevHash: tip };
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
    if (isKeyedKind(record.kind) && record.trigger_id !== null) {
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
