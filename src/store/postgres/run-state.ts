import { ControlPlaneError } from "../../core/errors.js";
import {
  type OnePerTriggerKind,
  type RecordKind,
  type RunKey,
  runKeyText,
  StaleRunVersionError,
} from "../../core/run/store.js";
import type {
  FoundRun,
  PlannedAppend,
  RunBackend,
  RunLogSource,
  RunReceipts,
  RunRows,
  RunSnapshot,
  StoredRecord,
  StoredTriggerEntry,
} from "../run-log/backend.js";
import { HEAD_COLUMNS, type StoredHead } from "../run-log/head.js";
import { decodeReceipt, type ReceiptRow } from "../run-log/receipts.js";
import { duplicateTriggerError, type TriggerListEntry } from "../run-log/records.js";
import { ChainedRunStore } from "../run-log/run-store.js";
import type { PostgresDatabase } from "./database.js";
import { READ_SQL, RECORD_COLUMN_NAMES, type RunRef, refOf, tailColumn, writeStatement } from "./run-state-sql.js";

/*
 * The PostgreSQL run-state store, shared by every replica on one database: the same head, records, trigger list
 * and receipts as the SQLite store, keyed by tenant, namespace and run. Each write is one statement, so it commits
 * all or nothing and is acknowledged only once PostgreSQL reports the commit (with `synchronous_commit` on, once
 * it is flushed). An append moves the head only if the head is still the one it was planned on: the update takes
 * the head row's lock, which serialises writers on one run across replicas, and PostgreSQL re-checks the condition
 * on the newest row once the lock is granted; the unique keys on position, (kind, seq) and the trigger list are the
 * final fence. What is written and how it is verified is shared by every backend (src/store/run-log/).
 */

const LABEL = "run state store";

/** SQLSTATE of a unique violation. */
const UNIQUE_VIOLATION = "23505";

/** A run as found: its key, and its newest record as read with its head (still to be verified like any read). */
interface FoundRows {
  key: RunRef;
  tail: StoredRecord | undefined;
}

class PostgresRunRows implements RunBackend<FoundRows> {
  constructor(private readonly db: PostgresDatabase) {}

  async find(key: RunKey): Promise<FoundRun<FoundRows> | undefined> {
    return headOf(key, (text, params) => this.db.query(LABEL, text, params));
  }

  async keys(): Promise<RunKey[]> {
    const rows = await this.db.query<{ tenant_id: string; namespace_id: string; run_id: string }>(
      LABEL,
      READ_SQL.allRuns,
    );
    return rows.map((row) => ({
      tenant_id: BigInt(row.tenant_id),
      namespace_id: BigInt(row.namespace_id),
      run_id: row.run_id,
    }));
  }

  source({ key: ref, tail }: FoundRows): RunLogSource {
    const rows = (text: string, ...params: unknown[]) => this.db.query<StoredRecord>(LABEL, text, [...ref, ...params]);
    const first = async (text: string, ...params: unknown[]) => (await rows(text, ...params))[0];
    return {
      atPosition: async (position) => (tail?.position === position ? tail : first(READ_SQL.atPosition, position)),
      prevHashAt: async (position) => {
        const [row] = await this.db.query<{ prev_hash: string }>(LABEL, READ_SQL.prevHashAt, [...ref, position]);
        return row?.prev_hash;
      },
      bySeq: (kind: RecordKind, seq) => first(READ_SQL.bySeq, kind, seq),
      firstByTrigger: (kind: OnePerTriggerKind, triggerId, maxSeq) =>
        first(READ_SQL.firstByTrigger, kind, triggerId, maxSeq),
      listedTrigger: async (kind, triggerId) => {
        const [row] = await this.db.query<{ seq: number }>(LABEL, READ_SQL.listedTrigger, [...ref, kind, triggerId]);
        return row?.seq;
      },
      packetsOf: (decisionId, maxSeq) => rows(READ_SQL.byDecision, decisionId, maxSeq),
      lastSubmission: (submissionId, maxSeq) => first(READ_SQL.lastBySubmission, submissionId, maxSeq),
      upToSeq: (kind, maxSeq) => rows(READ_SQL.upToSeq, kind, maxSeq),
    };
  }

  receipts({ key: ref }: FoundRows, key: RunKey): RunReceipts {
    const run = runKeyText(key);
    const decoded = async (text: string, ...params: unknown[]) => {
      const rows = await this.db.query<ReceiptRow>(LABEL, text, [...ref, ...params]);
      return rows.map((row) => decodeReceipt(row, run));
    };
    return {
      last: async () => (await decoded(READ_SQL.lastReceipt))[0],
      ofDecision: async (decisionId) => (await decoded(READ_SQL.receiptOfDecision, decisionId))[0],
      all: () => decoded(READ_SQL.allReceipts),
    };
  }

  /** One `REPEATABLE READ` transaction on one connection: every read in it sees the same snapshot. */
  async snapshot(key: RunKey): Promise<RunSnapshot<FoundRows> | undefined> {
    return this.db.transaction(
      LABEL,
      async (queries) => {
        const found = await headOf(key, (text, params) => queries.query(text, params));
        if (found === undefined) return undefined;
        const log = await queries.query<StoredRecord>(READ_SQL.wholeLog, found.ref.key);
        const triggerList = await queries.query<StoredTriggerEntry>(READ_SQL.triggerList, found.ref.key);
        return { ...found, log, triggerList };
      },
      "read only",
    );
  }

  async insert(key: RunKey, rows: RunRows): Promise<void> {
    const moved = await this.write(key, refOf(key), rows, undefined);
    if (!moved) throw new ControlPlaneError("run_exists", `run already exists: ${key.run_id}`);
  }

  /**
   * Planned on the head as read now; written only if that is still the run's head when the statement runs. (Not
   * on the head the caller's session read, which would save a read: a replica committing a little faster than
   * another would then win nearly every race on a shared run, and the other's retries could run out.)
   */
  async append(key: RunKey, plan: (found: FoundRun<FoundRows> | undefined) => PlannedAppend<FoundRows>) {
    const found = await this.find(key);
    const { ref, rows } = plan(found);
    if (found === undefined) throw new StaleRunVersionError(key);
    if (!(await this.write(key, ref.key, rows, found.head.head_hash))) throw new StaleRunVersionError(key);
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }

  /** Writes `rows` in one statement; whether the head moved. A trigger id listed already refuses the write. */
  private async write(key: RunKey, ref: RunRef, rows: RunRows, plannedOn: string | undefined): Promise<boolean> {
    const { text, params } = writeStatement(ref, rows, plannedOn);
    try {
      const [result] = await this.db.query<{ moved: number }>(LABEL, text, params);
      return result?.moved === 1;
    } catch (error) {
      const details = (error as ControlPlaneError).details;
      if (details?.postgres_code !== UNIQUE_VIOLATION) throw error;
      throw await this.uniqueViolation(key, ref, rows.listed);
    }
  }

  /**
   * A unique key refused the write: a trigger id the run lists already (or listed twice in one write) is a
   * duplicate trigger; any other key (a position or seq taken) means another writer got there first.
   */
  private async uniqueViolation(key: RunKey, ref: RunRef, listed: readonly TriggerListEntry[]): Promise<Error> {
    const taken = await this.db.query<{ kind: string; trigger_id: string }>(LABEL, READ_SQL.listedAlready, [
      ...ref,
      listed.map((entry) => entry.kind),
      listed.map((entry) => entry.trigger_id),
    ]);
    const isTaken = (entry: TriggerListEntry) =>
      taken.some((row) => row.kind === entry.kind && row.trigger_id === entry.trigger_id);
    const repeated = (entry: TriggerListEntry, index: number) =>
      listed.findIndex((other) => other.kind === entry.kind && other.trigger_id === entry.trigger_id) !== index;
    const duplicate = listed.find(isTaken) ?? listed.find(repeated);
    return duplicate === undefined ? new StaleRunVersionError(key) : duplicateTriggerError(key, duplicate);
  }
}

/** The head row of `key` and the newest record it counts, through `query` (the pool, or a snapshot's connection). */
async function headOf(
  key: RunKey,
  query: (text: string, params: readonly unknown[]) => Promise<Record<string, unknown>[]>,
): Promise<FoundRun<FoundRows> | undefined> {
  const ref = refOf(key);
  const [row] = await query(READ_SQL.head, ref);
  if (row === undefined) return undefined;
  const head = Object.fromEntries([...HEAD_COLUMNS, "head_hash"].map((column) => [column, row[column]]));
  const tail = Object.fromEntries(RECORD_COLUMN_NAMES.map((column) => [column, row[tailColumn(column)]]));
  return {
    ref: { key: ref, tail: tail.position === null ? undefined : (tail as unknown as StoredRecord) },
    head: head as unknown as StoredHead,
  };
}

export class PostgresRunStateStore extends ChainedRunStore<FoundRows> {
  constructor(db: PostgresDatabase) {
    super(new PostgresRunRows(db));
  }
}
