import type { Worker } from "node:worker_threads";
import { startWorkerThread } from "../../net/worker-thread.js";
import type { SqliteFailure, WriteOutcome, WriteStep } from "./writer-group.js";
import type { WriterReply, WriterRequest, WriterThreadData } from "./writer-thread.js";

/*
 * The write side of one database file, off the serving thread: writes queued while the event loop was busy are
 * sent as one group to a writer thread (writer-thread.ts), which commits the group in one transaction with one
 * fsync while this thread keeps serving; each write settles once its group is durable. While a group commits,
 * the next one gathers here, so groups grow with the load. Writers on other connections and in other processes
 * are serialised by SQLite's write lock, and each write carries its own guards (steps that must change a row).
 */

/** How a write ended, as its caller sees it: committed, or refused at a step (nothing of it written). */
export type WriteResult = { committed: true } | { refusedAt: number };

/** What the writer reports to its database: each group's storage failure, or that a write went through. */
export interface WriterEvents {
  /** A write failed for a SQLite reason (or the thread stopped): the typed error to reject it with. */
  failure(failure: SqliteFailure): Error;
  /** A group committed. */
  committed(): void;
  /** The thread stopped unasked (its groups in flight failed). */
  lost(): void;
}

interface Pending {
  steps: WriteStep[];
  resolve: (result: WriteResult) => void;
  reject: (error: unknown) => void;
}

/** A PRAGMA sent to the thread, answered with its value. */
interface PendingPragma {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Groups in flight at once: one committing, one waiting in the thread so it never idles between groups. */
const MAX_GROUPS_IN_FLIGHT = 2;

export class SqliteWriter {
  private readonly queue: Pending[] = [];
  private readonly inFlight = new Map<number, Pending[]>();
  private readonly pragmas = new Map<number, PendingPragma>();
  private thread: Worker | undefined;
  private nextGroup = 1;
  private scheduled = false;
  private closed: Promise<void> | undefined;

  constructor(
    private readonly data: WriterThreadData,
    private readonly events: WriterEvents,
  ) {}

  /** Queues a write for the next group; settles once that group committed (or the write was refused or failed). */
  write(steps: WriteStep[]): Promise<WriteResult> {
    if (this.closed !== undefined) return Promise.reject(this.events.failure(CLOSED));
    return new Promise<WriteResult>((resolve, reject) => {
      this.queue.push({ steps, resolve, reject });
      this.schedule();
    });
  }

  /** Runs a PRAGMA on the write connection (after the groups sent before it); settles with its value. */
  pragma(pragma: string): Promise<unknown> {
    if (this.closed !== undefined) return Promise.reject(this.events.failure(CLOSED));
    return new Promise((resolve, reject) => {
      const id = this.nextGroup++;
      this.pragmas.set(id, { resolve, reject });
      const thread = this.running();
      thread.ref();
      thread.postMessage({ type: "pragma", id, pragma } satisfies WriterRequest);
    });
  }

  /**
   * Stops taking writes: those not yet sent are refused (never written), the groups in flight finish, then the
   * thread closes its connection. Settles once the thread is gone.
   */
  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    for (const pending of this.queue.splice(0)) pending.reject(this.events.failure(CLOSED));
    const thread = this.thread;
    if (thread === undefined) {
      this.closed = Promise.resolve();
      return this.closed;
    }
    this.closed = new Promise<void>((resolve) => thread.once("exit", () => resolve()));
    thread.ref();
    thread.postMessage({ type: "close" } satisfies WriterRequest);
    return this.closed;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight.size >= MAX_GROUPS_IN_FLIGHT) return;
    this.scheduled = true;
    // After the current turn's I/O callbacks, so that the writes of every request handled in it share a group.
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  private send(): void {
    if (this.queue.length === 0 || this.inFlight.size >= MAX_GROUPS_IN_FLIGHT || this.closed !== undefined) return;
    const group = this.queue.splice(0);
    const id = this.nextGroup++;
    this.inFlight.set(id, group);
    const thread = this.running();
    thread.ref();
    thread.postMessage({ type: "commit", id, writes: group.map((pending) => pending.steps) } satisfies WriterRequest);
  }

  private running(): Worker {
    if (this.thread !== undefined) return this.thread;
    const thread = startWorkerThread(import.meta.url, "writer-thread", { workerData: this.data });
    thread.on("message", (reply: WriterReply) => this.settle(reply));
    // A thread that dies (an uncaught error, or killed) fails its groups in flight; the next write starts a new one.
    thread.on("error", (error) => this.stopped(thread, error.message));
    thread.on("exit", (code) => this.stopped(thread, `exited with code ${code}`));
    this.thread = thread;
    return thread;
  }

  private settle({ id, outcomes, value }: WriterReply): void {
    const pragma = this.pragmas.get(id);
    if (pragma !== undefined) {
      this.pragmas.delete(id);
      const outcome = outcomes[0] as WriteOutcome;
      if ("failed" in outcome) pragma.reject(this.events.failure(outcome.failed));
      else pragma.resolve(value);
      this.idleOrNext();
      return;
    }
    const group = this.inFlight.get(id) ?? [];
    this.inFlight.delete(id);
    let committed = false;
    for (const [index, pending] of group.entries()) {
      const outcome = outcomes[index] as WriteOutcome;
      if ("failed" in outcome) {
        pending.reject(this.events.failure(outcome.failed));
      } else {
        committed ||= "committed" in outcome;
        pending.resolve(outcome);
      }
    }
    if (committed) this.events.committed();
    this.idleOrNext();
  }

  private stopped(thread: Worker, why: string): void {
    if (this.thread !== thread) return;
    this.thread = undefined;
    if (this.closed === undefined) this.events.lost();
    const failure = this.events.failure(
      this.closed === undefined ? { code: null, message: `writer thread stopped: ${why}` } : CLOSED,
    );
    for (const group of this.inFlight.values()) for (const pending of group) pending.reject(failure);
    for (const pending of this.pragmas.values()) pending.reject(failure);
    this.inFlight.clear();
    this.pragmas.clear();
    this.idleOrNext();
  }

  /** Lets the process exit while nothing is in flight; sends what gathered meanwhile. */
  private idleOrNext(): void {
    if (this.inFlight.size === 0 && this.pragmas.size === 0) this.thread?.unref();
    if (this.queue.length > 0) this.schedule();
  }
}

const CLOSED: SqliteFailure = { code: null, message: "the database is closed" };
