import type { z } from "zod";
import { DispatchTarget, type RunState, RunStatus } from "../../core/run/schema.js";
import { type LogCounts, type RunHead, type RunKey, runKeyText } from "../../core/run/store.js";
import { decode, HashDigest, Timestamp } from "../../core/wire/common.js";
import { sha256Hex } from "../../json/hash.js";
import { parseJson } from "../../json/parse.js";
import { canonicalJson } from "../../json/write.js";
import { storeCorrupt } from "../stored-bytes.js";
import { countsIn, LOG_NAMES } from "./records.js";

/*
 * A run's head as a database row: text columns with a checksum over all of them (`head_hash`), so a head edited
 * or torn outside the store is detected when read.
 */

/** The columns of a head row, besides the backend's own key and the checksum: one count column per log. */
export interface HeadFields extends LogCounts {
  tenant_id: string;
  namespace_id: string;
  run_id: string;
  scenario_id: string;
  spec_hash: string;
  current_stage_id: string;
  stage_entered_at: string;
  status: string;
  dispatch_targets: string;
  version: number;
  chain_tip: string;
}

/** A head row as a backend stores it and reads it back: the columns and their checksum. */
export type StoredHead = HeadFields & { head_hash: string };

/** Every column of a head row besides the checksum, in checksum order. */
export const HEAD_COLUMNS: readonly (keyof HeadFields)[] = [
  "tenant_id",
  "namespace_id",
  "run_id",
  "scenario_id",
  "spec_hash",
  "current_stage_id",
  "stage_entered_at",
  "status",
  "dispatch_targets",
  ...LOG_NAMES,
  "version",
  "chain_tip",
];

/** The columns a commit changes (the run's identity never changes). */
export const MOVING_HEAD_COLUMNS: readonly (keyof HeadFields)[] = [
  "current_stage_id",
  "stage_entered_at",
  "status",
  ...LOG_NAMES,
  "version",
  "chain_tip",
];

/** What a head row says about a run besides its position in the log. */
type RunIdentity = RunKey & Pick<RunState, "scenario_id" | "spec_hash" | "dispatch_targets">;
type RunPosition = Pick<RunState, "current_stage_id" | "stage_entered_at" | "status">;

const DispatchTargets = DispatchTarget.array();

export function headFields(
  run: RunIdentity,
  at: RunPosition,
  counts: LogCounts,
  version: number,
  chainTip: string,
): HeadFields {
  return {
    tenant_id: String(run.tenant_id),
    namespace_id: String(run.namespace_id),
    run_id: run.run_id,
    scenario_id: run.scenario_id,
    spec_hash: canonicalJson(run.spec_hash),
    ...positionFields(at),
    dispatch_targets: canonicalJson(run.dispatch_targets),
    ...counts,
    version,
    chain_tip: chainTip,
  };
}

export function positionFields(at: RunPosition): Pick<HeadFields, "current_stage_id" | "stage_entered_at" | "status"> {
  return {
    current_stage_id: at.current_stage_id,
    stage_entered_at: canonicalJson(at.stage_entered_at),
    status: at.status,
  };
}

/** A checksum over every head column. */
export function headHash(fields: HeadFields): string {
  return sha256Hex(JSON.stringify(HEAD_COLUMNS.map((column) => fields[column])));
}

/** The head row of `fields`: the columns with their checksum. */
export function storedHead(fields: HeadFields): StoredHead {
  return { ...fields, head_hash: headHash(fields) };
}

/** The columns of a stored head row, checked against the row's checksum. */
export function verifiedFields(key: RunKey, row: StoredHead): HeadFields {
  const fields: HeadFields = {
    tenant_id: row.tenant_id,
    namespace_id: row.namespace_id,
    run_id: row.run_id,
    scenario_id: row.scenario_id,
    spec_hash: row.spec_hash,
    current_stage_id: row.current_stage_id,
    stage_entered_at: row.stage_entered_at,
    status: row.status,
    dispatch_targets: row.dispatch_targets,
    ...countsIn(row),
    version: row.version,
    chain_tip: row.chain_tip,
  };
  if (headHash(fields) !== row.head_hash) throw storeCorrupt("run state", runKeyText(key), "head hash mismatch");
  return fields;
}

/** The run head a verified head row describes; a column that does not decode fails closed. */
export function decodeHead(key: RunKey, fields: HeadFields): RunHead {
  const column = <T extends z.ZodType>(schema: T, name: string, value: () => unknown): z.output<T> => {
    try {
      return decode(schema, value(), name);
    } catch (error) {
      throw storeCorrupt("run state", runKeyText(key), `head undecodable: ${(error as Error).message}`);
    }
  };
  return {
    tenant_id: key.tenant_id,
    namespace_id: key.namespace_id,
    run_id: key.run_id,
    scenario_id: fields.scenario_id,
    spec_hash: column(HashDigest, "spec_hash", () => parseJson(fields.spec_hash)),
    current_stage_id: fields.current_stage_id,
    stage_entered_at: column(Timestamp, "stage_entered_at", () => parseJson(fields.stage_entered_at)),
    status: column(RunStatus, "status", () => fields.status),
    dispatch_targets: column(DispatchTargets, "dispatch_targets", () => parseJson(fields.dispatch_targets)),
    counts: countsIn(fields),
    version: fields.version,
  };
}
