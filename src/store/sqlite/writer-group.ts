import type BetterSqlite from "better-sqlite3";

/*
 * One group commit on the write connection (run by the writer thread, writer-thread.ts): every write of the group
 * in one `BEGIN IMMEDIATE` transaction, so one WAL fsync for all of them, each write in its own savepoint so a
 * refused or failing one is rolled back alone. This module imports nothing of the project: the writer thread
 * loads it on its own.
 */

/** One statement of a write, with its named parameters. */
export interface WriteStep {
  sql: string;
  params: Record<string, unknown>;
  /** A step that must change a row (a guarded update, an insert that must not conflict): otherwise the write is refused. */
  mustChange?: boolean;
  /** Sets this named parameter to the rowid the write's first step inserted. */
  rowidParam?: string;
}

/** A SQLite failure as it crosses the thread boundary. */
export interface SqliteFailure {
  code: string | null;
  message: string;
}

/** How one write of a group ended: committed, refused at a step (nothing of it written), or failed. */
export type WriteOutcome = { committed: true } | { refusedAt: number } | { failed: SqliteFailure };

export function failureOf(error: unknown): SqliteFailure {
  const code = (error as { code?: unknown } | null)?.code;
  return {
    code: typeof code === "string" && code.startsWith("SQLITE_") ? code : null,
    message: error instanceof Error ? error.message : String(error),
  };
}

class Refused extends Error {
  constructor(readonly step: number) {
    super(`write refused at step ${step}`);
  }
}

/** The prepared statements of one connection, by SQL text (a store sends few distinct statements). */
export class StatementCache {
  private readonly statements = new Map<string, BetterSqlite.Statement>();

  constructor(private readonly connection: BetterSqlite.Database) {}

  get(sql: string): BetterSqlite.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.connection.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

function applyWrite(statements: StatementCache, steps: readonly WriteStep[]): void {
  let rowid: number | bigint | undefined;
  for (const [index, step] of steps.entries()) {
    const params = step.rowidParam === undefined ? step.params : { ...step.params, [step.rowidParam]: rowid };
    const { changes, lastInsertRowid } = statements.get(step.sql).run(params);
    if (step.mustChange === true && changes === 0) throw new Refused(index);
    if (index === 0) rowid = lastInsertRowid;
  }
}

/**
 * Commits `writes` as one group and answers each. When SQLite rolls the whole transaction back (a full disk, an
 * I/O error) or the commit fails, nothing of the group is written and that failure is every write's outcome.
 */
export function commitGroup(
  connection: BetterSqlite.Database,
  statements: StatementCache,
  writes: readonly (readonly WriteStep[])[],
): WriteOutcome[] {
  const outcomes: WriteOutcome[] = [];
  try {
    connection
      .transaction(() => {
        for (const steps of writes) {
          try {
            connection.transaction(() => applyWrite(statements, steps))();
            outcomes.push({ committed: true });
          } catch (error) {
            // A savepoint never commits on its own: without the transaction, the group is lost as a whole.
            if (!connection.inTransaction) throw error;
            outcomes.push(error instanceof Refused ? { refusedAt: error.step } : { failed: failureOf(error) });
          }
        }
      })
      .immediate();
  } catch (error) {
    const failed = { failed: failureOf(error) };
    return writes.map(() => failed);
  }
  return outcomes;
}
