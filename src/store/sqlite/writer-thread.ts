import { parentPort, workerData } from "node:worker_threads";
import BetterSqlite from "better-sqlite3";
import { commitGroup, failureOf, StatementCache, type WriteOutcome, type WriteStep } from "./writer-group.js";

/*
 * The writer thread of one database (started by writer.ts): owns the write connection and commits each group it
 * is sent, so that COMMIT and its fsync never block the thread that serves requests. Answers a group only once
 * its transaction is durable (or failed).
 */

export interface WriterThreadData {
  path: string;
  busyTimeoutMs: number;
  syncMode: "full" | "normal";
}

export type WriterRequest =
  | { type: "commit"; id: number; writes: WriteStep[][] }
  | { type: "pragma"; id: number; pragma: string }
  | { type: "close" };
/** A group's outcomes, or a PRAGMA's value (as one outcome, failed or `committed` with the value). */
export interface WriterReply {
  id: number;
  outcomes: WriteOutcome[];
  value?: unknown;
}

const data = workerData as WriterThreadData;
const port = parentPort;
let open: { connection: BetterSqlite.Database; statements: StatementCache } | undefined;

/** Opens the write connection on first use (and again after a failed open); the file must already exist. */
function connect(): NonNullable<typeof open> {
  if (open !== undefined) return open;
  const connection = new BetterSqlite(data.path, { timeout: data.busyTimeoutMs, fileMustExist: true });
  try {
    connection.pragma("foreign_keys = ON");
    connection.pragma(`synchronous = ${data.syncMode === "full" ? "full" : "normal"}`);
  } catch (error) {
    connection.close();
    throw error;
  }
  open = { connection, statements: new StatementCache(connection) };
  return open;
}

function commit(writes: WriteStep[][]): WriteOutcome[] {
  let target: NonNullable<typeof open>;
  try {
    target = connect();
  } catch (error) {
    const failed = { failed: failureOf(error) };
    return writes.map(() => failed);
  }
  return commitGroup(target.connection, target.statements, writes);
}

/** A setting of the write connection itself (e.g. `max_page_count`, which is per connection). */
function pragma({ id, pragma }: { id: number; pragma: string }): WriterReply {
  try {
    return { id, outcomes: [{ committed: true }], value: connect().connection.pragma(pragma, { simple: true }) };
  } catch (error) {
    return { id, outcomes: [{ failed: failureOf(error) }] };
  }
}

port?.on("message", (request: WriterRequest) => {
  if (request.type === "close") {
    open?.connection.close();
    open = undefined;
    port.close();
    return;
  }
  port.postMessage(request.type === "commit" ? { id: request.id, outcomes: commit(request.writes) } : pragma(request));
});
