import { DecisionGateError } from "../../core/errors.js";
import { LruMap } from "../../core/lru-map.js";
import type { RunState } from "../../core/run/schema.js";
import {
  type RunChange,
  type RunCheckDepth,
  type RunKey,
  type RunLookahead,
  type RunSession,
  type RunStateStore,
  type RunStoreCheck,
  type RunStoreVerifier,
  runKeyText,
  StaleRunVersionError,
  type StoredReceipt,
} from "../../core/run/store.js";
import { type FoundRun, type PlannedAppend, type RunBackend, type RunRows, storedForm } from "./backend.js";
import { decodeHead, headFields, positionFields, storedHead, verifiedFields } from "./head.js";
import { type KnownTail, KnownTails } from "./known-tails.js";
import {
  type ChainedRecord,
  chainRecords,
  countsIn,
  type EncodedRecord,
  encodeAppended,
  genesisHash,
  triggerListEntries,
  zeroCounts,
} from "./records.js";
import { VerifiedRunSession } from "./session.js";
import { VerifiedRunLog } from "./verified-log.js";

/*
 * The run-state store every backend shares: the contract (src/core/run/store.ts) over a backend's rows
 * (backend.ts). Writes are planned here (records encoded and chained, the head row and its checksum, the version
 * check of a commit) and every read is verified here before it is used (verified-log.ts), so backends differ
 * only in where rows live and how writes are made atomic.
 */

/** Heads kept for the next commit (each about one head row and whatever the backend read with it). */
const OPENED_HEADS = 4096;

export class ChainedRunStore<Ref> implements RunStateStore, RunStoreVerifier {
  /** Tails written or verified by this store. */
  private readonly tails = new KnownTails();
  /** The head each run was last opened at, by run key text: what its next commit is planned on. */
  private readonly opened = new LruMap<string, FoundRun<Ref>>(OPENED_HEADS);

  constructor(private readonly backend: RunBackend<Ref>) {}

  async create(state: RunState, receipts: StoredReceipt[] = []): Promise<void> {
    const key: RunKey = { tenant_id: state.tenant_id, namespace_id: state.namespace_id, run_id: state.run_id };
    const chained = chainRecords(zeroCounts(), genesisHash(key), encodeAppended(state), key);
    const head = storedHead(headFields(state, state, chained.counts, 0, chained.chainTip));
    await this.backend.insert(key, rowsOf(head, chained.records, receipts));
    this.tails.remember(runKeyText(key), tailOf(chained));
  }

  async open(key: RunKey, lookahead?: RunLookahead): Promise<RunSession | undefined> {
    const run = runKeyText(key);
    this.opened.delete(run);
    const found = await this.backend.find(key, lookahead);
    if (found === undefined) return undefined;
    const { head, log } = this.verifiedRun(key, found);
    this.tails.remember(run, await log.verifyTail(this.tails.get(run)));
    this.opened.set(run, found);
    return new VerifiedRunSession(head, log, this.backend.receipts(found.ref, key));
  }

  /**
   * Appends if the run is still at `expectedVersion`: planned on the head this store last opened the run at (the
   * caller's session; heads only move on, so a version other than that one is stale whatever the run's head is now)
   * and checked against the run's head as the backend writes.
   */
  async commit(key: RunKey, expectedVersion: number, change: RunChange): Promise<void> {
    const run = runKeyText(key);
    const basis = this.opened.get(run);
    this.opened.delete(run);
    const encoded = encodeAppended(change.appended);
    let tail: KnownTail | undefined;
    await this.backend.append(
      key,
      (found) => {
        const planned = planAppend(key, found, expectedVersion, change, encoded);
        tail = planned.tail;
        return planned;
      },
      basis,
    );
    // Remembered only once the append is durable.
    if (tail !== undefined) this.tails.remember(run, tail);
  }

  async exclusive<T>(key: RunKey, work: () => Promise<T>): Promise<T> {
    return this.backend.exclusive === undefined ? work() : this.backend.exclusive(key, work);
  }

  async load(key: RunKey): Promise<RunState | undefined> {
    const snapshot = await this.backend.snapshot(key);
    if (snapshot === undefined) return undefined;
    const { head, log } = this.verifiedRun(key, snapshot);
    const { counts: _counts, version: _version, ...fields } = head;
    return { ...fields, ...(await log.loadAll(snapshot.log)) };
  }

  async loadReceipts(key: RunKey): Promise<StoredReceipt[]> {
    const found = await this.backend.find(key);
    return found === undefined ? [] : this.backend.receipts(found.ref, key).all();
  }

  /**
   * Each run against its own head (a whole run in one snapshot), so that a live server's commits meanwhile are no
   * false alarm.
   */
  async verifyRuns(depth: RunCheckDepth, progress?: (checked: number, total: number) => void): Promise<RunStoreCheck> {
    const verifyOne = async (key: RunKey) => {
      if (depth === "full") {
        const snapshot = await this.backend.snapshot(key);
        if (snapshot === undefined) return 0;
        return (await this.verifiedRun(key, snapshot).log.verifyAll(snapshot)).records;
      }
      const found = await this.backend.find(key);
      if (found === undefined) return 0;
      return (await this.verifiedRun(key, found).log.verifyTail()) === undefined ? 0 : 1;
    };
    return verifyEachRun(await this.backend.keys(), verifyOne, progress);
  }

  async ready(): Promise<boolean> {
    return this.backend.ready();
  }

  private verifiedRun(key: RunKey, found: FoundRun<Ref>) {
    const fields = verifiedFields(key, found.head);
    const log = new VerifiedRunLog(this.backend.source(found.ref), key, {
      counts: countsIn(fields),
      chainTip: fields.chain_tip,
    });
    return { head: decodeHead(key, fields), log };
  }
}

/** The rows of an append to the run as `found` (read in the backend's write transaction); stale unless unchanged. */
function planAppend<Ref>(
  key: RunKey,
  found: FoundRun<Ref> | undefined,
  expectedVersion: number,
  change: RunChange,
  encoded: EncodedRecord[],
): PlannedAppend<Ref> & { tail: KnownTail | undefined } {
  if (found === undefined) throw new StaleRunVersionError(key);
  const current = verifiedFields(key, found.head);
  if (current.version !== expectedVersion) throw new StaleRunVersionError(key);
  const chained = chainRecords(countsIn(current), current.chain_tip, encoded, key);
  const head = storedHead({
    ...current,
    ...positionFields(change),
    ...chained.counts,
    version: current.version + 1,
    chain_tip: chained.chainTip,
  });
  return { ref: found.ref, rows: rowsOf(head, chained.records, change.receipts ?? []), tail: tailOf(chained) };
}

function rowsOf(head: RunRows["head"], records: ChainedRecord[], receipts: readonly StoredReceipt[]): RunRows {
  return { head, records, listed: triggerListEntries(records), receipts };
}

/** The newest of newly chained records, to remember once written (none when nothing was appended). */
function tailOf(chained: { records: ChainedRecord[]; chainTip: string }): KnownTail | undefined {
  const last = chained.records.at(-1);
  return last === undefined ? undefined : { chainTip: chained.chainTip, row: storedForm(last) };
}

/**
 * Verifies runs one after the other with `verifyOne` (which returns the records it verified), collecting the
 * damage found instead of stopping at it: one line per damaged run, naming it.
 */
async function verifyEachRun(
  keys: readonly RunKey[],
  verifyOne: (key: RunKey) => Promise<number>,
  progress?: (checked: number, total: number) => void,
): Promise<RunStoreCheck> {
  const check: RunStoreCheck = { runs: keys.length, records: 0, problems: [] };
  for (const [index, key] of keys.entries()) {
    try {
      check.records += await verifyOne(key);
    } catch (error) {
      if (!(error instanceof DecisionGateError)) throw error;
      check.problems.push(error.code === "store_corrupt" ? error.message : `${runKeyText(key)}: ${error.message}`);
    }
    progress?.(index + 1, keys.length);
  }
  return check;
}
