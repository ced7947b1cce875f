import { StaleRunVersionError } from "../../core/run/store.js";
import type { SqliteDatabase } from "./database.js";

/*
 * Group commit: the writes queued on one database while the event loop was busy share one `BEGIN IMMEDIATE`
 * transaction, and so one fsync. Each runs in its own savepoint, so a stale or failing one is rolled back alone;
 * all are settled only after the transaction committed.
 */

/** Commits a queue's writes; true when one of them lost a race (went stale). */
type GroupFlush = () => boolean;

/**
 * Runs the group commits of every queue in the process once per event-loop turn (after I/O, so that commits
 * of requests handled in the same turn share a transaction). Queues whose commits went stale in their last
 * flush go first: writers on different connections racing on one run then take turns winning, instead of
 * the one whose retries happen to be scheduled first winning every time.
 */
class GroupCommitScheduler {
  private readonly waiting = new Set<GroupFlush>();
  private readonly losses = new WeakMap<GroupFlush, number>();

  schedule(flush: GroupFlush): void {
    if (this.waiting.size === 0) setImmediate(() => this.run());
    this.waiting.add(flush);
  }

  private run(): void {
    const lossesOf = (flush: GroupFlush) => this.losses.get(flush) ?? 0;
    const flushes = [...this.waiting].sort((a, b) => lossesOf(b) - lossesOf(a));
    this.waiting.clear();
    for (const flush of flushes) this.losses.set(flush, flush() ? lossesOf(flush) + 1 : 0);
  }
}

const scheduler = new GroupCommitScheduler();

interface PendingWrite {
  write: () => void;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** The queue of group-committed writes of one store on one database. */
export class GroupCommitQueue {
  private readonly pending: PendingWrite[] = [];

  constructor(
    private readonly db: SqliteDatabase,
    private readonly label: string,
  ) {}

  /** Queues `write` for the next group commit and settles once that transaction is durable. */
  run(write: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ write, resolve, reject });
      if (this.pending.length === 1) scheduler.schedule(this.flush);
    });
  }

  private readonly flush: GroupFlush = () => {
    const batch = this.pending.splice(0);
    const failures = new Map<PendingWrite, unknown>();
    try {
      this.db.write(this.label, () => {
        for (const item of batch) {
          try {
            this.db.savepoint(this.label, item.write);
          } catch (error) {
            // The whole transaction is gone (SQLite rolls it back on a full disk or an I/O error): nothing of
            // the batch commits, and this error is every write's answer.
            if (!this.db.inTransaction()) throw error;
            failures.set(item, error);
          }
        }
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
      return false;
    }
    for (const item of batch) {
      if (failures.has(item)) item.reject(failures.get(item));
      else item.resolve();
    }
    return [...failures.values()].some((error) => error instanceof StaleRunVersionError);
  };
}
