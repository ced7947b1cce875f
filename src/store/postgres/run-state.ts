import { ControlPlaneError } from "../../core/errors.js";
import {
  type OnePerTriggerKind,
  type RecordKind,
  type RunKey,
  type RunLookahead,
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
import {
  foundColumn,
  READ_SQL,
  RECORD_COLUMN_NAMES,
  type RunRef,
  refOf,
  tailColumn,
  writeStatement,
} from "./run-state-sql.js";

/*
 * The PostgreSQL run-state store, shared by every replica on one database: the same head, records, trigger list
 * and receipts as the SQLite store, keyed by tenant, namespace and run. Each write is one statement, so it commits
 * all or nothing and is acknowledged only once PostgreSQL reports the commit (with `synchronous_commit` on, once
 * it is flushed). An append moves the head only if the head is still the one it was planned on: the update takes
 * the head row's lock, which serialises writers on one run across replicas, and PostgreSQL re-checks the condition
 * on the newest row once the lock is granted; the unique keys on position, (kind, seq) and the trigger list are the
 * final fence. A replica that loses that race runs its step again holding the run's advisory lock, which the other
 * replicas' writes yield to, so it goes next (`exclusive`). A call costs two round trips: the head read with what
 * the call looks up first (`READ_SQL.head`), and the write. What is written and how it is verified is shared by
 * every backend (src/store/run-log/).
 */

const LABEL = "run state store";

/** SQLSTATE of a unique violation. */
const UNIQUE_VIOLATION = "23505";

/**
 * A run as found: its key, and what was read with its head (still to be verified like any read): its newest record,
 * its last receipt, and the two lookups of the lookahead trigger id's decision.
 */
interface FoundRows {
  key: RunRef;
  tail: StoredRecord | undefined;
  lastReceipt: ReceiptRow | undefined;
  decisionLookup?: { triggerId: string; maxSeq: number; indexed: StoredRecord | undefined; listed: number | undefined };
}

class PostgresRunRows implements RunBackend<FoundRows> {
  /** Runs in the middle of a step holding them against other replicas (`exclusive`), by run key text. */
  private readonly held = new Set<string>();

  constructor(private readonly db: PostgresDatabase) {}

  async find(key: RunKey, lookahead?: RunLookahead): Promise<FoundRun<FoundRows> | undefined> {
    return headOf(key, lookahead, (text, params) => this.db.query(LABEL, text, params));
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

  source({ key: ref, tail, decisionLookup: lookup }: FoundRows): RunLogSource {
    const rows = (text: string, ...params: unknown[]) => this.db.query<StoredRecord>(LABEL, text, [...ref, ...params]);
    const first = async (text: string, ...params: unknown[]) => (await rows(text, ...params))[0];
    const readAhead = (kind: OnePerTriggerKind, triggerId: string) =>
      lookup !== undefined && kind === "decision" && triggerId === lookup.triggerId ? lookup : undefined;
    return {
      atPosition: async (position) => (tail?.position === position ? tail : first(READ_SQL.atPosition, position)),
      prevHashAt: async (position) => {
        const [row] = await this.db.query<{ prev_hash: string }>(LABEL, READ_SQL.prevHashAt, [...ref, position]);
        return row?.prev_hash;
      },
      bySeq: (kind: RecordKind, seq) => first(READ_SQL.bySeq, kind, seq),
      firstByTrigger: async (kind: OnePerTriggerKind, triggerId, maxSeq) => {
        const ahead = readAhead(kind, triggerId);
        return ahead?.maxSeq === maxSeq ? ahead.indexed : first(READ_SQL.firstByTrigger, kind, triggerId, maxSeq);
      },
      listedTrigger: async (kind, triggerId) => {
        const ahead = readAhead(kind, triggerId);
        if (ahead !== undefined) return ahead.listed;
        const [row] = await this.db.query<{ seq: number }>(LABEL, READ_SQL.listedTrigger, [...ref, kind, triggerId]);
        return row?.seq;
      },
      packetsOf: (decisionId, maxSeq) => rows(READ_SQL.byDecision, decisionId, maxSeq),
      lastSubmission: (submissionId, maxSeq) => first(READ_SQL.lastBySubmission, submissionId, maxSeq),
      upToSeq: (kind, maxSeq) => rows(READ_SQL.upToSeq, kind, maxSeq),
    };
  }

  receipts({ key: ref, lastReceipt }: FoundRows, key: RunKey): RunReceipts {
    const run = runKeyText(key);
    const decoded = async (text: string, ...params: unknown[]) => {
      const rows = await this.db.query<ReceiptRow>(LABEL, text, [...ref, ...params]);
      return rows.map((row) => decodeReceipt(row, run));
    };
    return {
      last: async () => (lastReceipt === undefined ? undefined : decodeReceipt(lastReceipt, run)),
      ofDecision: async (decisionId) => (await decoded(READ_SQL.receiptOfDecision, decisionId))[0],
      all: () => decoded(READ_SQL.allReceipts),
    };
  }

  /** One `REPEATABLE READ` transaction on one connection: every read in it sees the same snapshot. */
  async snapshot(key: RunKey): Promise<RunSnapshot<FoundRows> | undefined> {
    return this.db.transaction(
      LABEL,
      async (queries) => {
        const found = await headOf(key, undefined, (text, params) => queries.query(text, params));
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

  /** Planned on the caller's head, or else the head as read now; written only if still the head then. */
  async append(
    key: RunKey,
    plan: (found: FoundRun<FoundRows> | undefined) => PlannedAppend<FoundRows>,
    basis?: FoundRun<FoundRows>,
  ) {
    const found = basis ?? (await this.find(key));
    const { ref, rows } = plan(found);
    if (found === undefined) throw new StaleRunVersionError(key);
    if (!(await this.write(key, ref.key, rows, found.head.head_hash))) throw new StaleRunVersionError(key);
  }

  /**
   * Holds the run's advisory lock for the length of `work`. The writes of other replicas take the same lock in
   * shared mode and do not wait for it: while it is held or awaited they move no head, and their callers come here
   * to queue for it in turn. `work`'s own writes go through without it.
   */
  async exclusive<T>(key: RunKey, work: () => Promise<T>): Promise<T> {
    const run = runKeyText(key);
    return this.db.withAdvisoryLock(LABEL, runLockText(key), async () => {
      this.held.add(run);
      try {
        return await work();
      } finally {
        this.held.delete(run);
      }
    });
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }

  /** Writes `rows` in one statement; whether the head moved. A trigger id listed already refuses the write. */
  private async write(key: RunKey, ref: RunRef, rows: RunRows, plannedOn: string | undefined): Promise<boolean> {
    const yieldTo = plannedOn === undefined || this.held.has(runKeyText(key)) ? undefined : runLockText(key);
    const { text, params } = writeStatement(ref, rows, plannedOn, yieldTo);
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

/** The text of a run's advisory lock key (hashed by PostgreSQL); a collision only holds two runs together. */
function runLockText(key: RunKey): string {
  return `run/${runKeyText(key)}`;
}

/** The head row of `key` and what is read with it (`READ_SQL.head`), through `query` (the pool, or a snapshot's). */
async function headOf(
  key: RunKey,
  lookahead: RunLookahead | undefined,
  query: (text: string, params: readonly unknown[]) => Promise<Record<string, unknown>[]>,
): Promise<FoundRun<FoundRows> | undefined> {
  const ref = refOf(key);
  const triggerId = lookahead?.decisionOf;
  const [row] = await query(READ_SQL.head, [...ref, triggerId ?? null]);
  if (row === undefined) return undefined;
  const head = Object.fromEntries([...HEAD_COLUMNS, "head_hash"].map((column) => [column, row[column]]));
  const record = (column: (name: string) => string) => {
    const fields = Object.fromEntries(RECORD_COLUMN_NAMES.map((name) => [name, row[column(name)]]));
    return fields.position === null ? undefined : (fields as unknown as StoredRecord);
  };
  const receipt = { receipt_json: row.receipt_receipt_json, row_sha256: row.receipt_row_sha256 };
  const found: FoundRows = {
    key: ref,
    tail: record(tailColumn),
    lastReceipt: receipt.receipt_json === null ? undefined : (receipt as ReceiptRow),
  };
  if (triggerId !== undefined) {
    const listed = row.listed_seq;
    found.decisionLookup = {
      triggerId,
      maxSeq: Number(row.decisions),
      indexed: record(foundColumn),
      listed: listed === null ? undefined : (listed as number),
    };
  }
  return { ref: found, head: head as unknown as StoredHead };
}

export class PostgresRunStateStore extends ChainedRunStore<FoundRows> {
  constructor(db: PostgresDatabase) {
    super(new PostgresRunRows(db));
  }
}
