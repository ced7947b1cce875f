import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import BetterSqlite from "better-sqlite3";
import { ControlPlaneError, DecisionGateError, InvalidInputError, StorageFullError } from "../../core/errors.js";
import { storeDamagedError } from "../store-check.js";
import { type Migration, STORE_MIGRATIONS } from "./migrations.js";
import { SqliteWriter, type WriteResult } from "./writer.js";
import type { SqliteFailure, WriteStep } from "./writer-group.js";

/*
 * One SQLite database file: opening it with the configured PRAGMAs, bringing its schema up to date with
 * versioned migrations, and running reads and writes as transactions with typed errors. Reads and the rare
 * writes (migrations, registries) use this thread's connection; the run store's writes go to a writer thread
 * with a connection of its own (writer.ts), so their commits and fsyncs do not block this thread.
 */

export type JournalMode = "wal" | "delete";
export type SyncMode = "full" | "normal";

export interface SqliteOptions {
  path: string;
  journal_mode: JournalMode;
  sync_mode: SyncMode;
  busy_timeout_ms: number | bigint;
}

/**
 * SQLite result codes that mean the file cannot take a write right now (as opposed to a refused or conflicting
 * statement): no space, a read-only file or directory, an I/O error, a file that cannot be opened or is damaged.
 */
const STORAGE_FAILURES = /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|CORRUPT|NOTADB)(_|$)/;

function sqliteCode(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_") ? code : null;
}

function fileIdentity(path: string): string | null {
  if (path === ":memory:") return null;
  try {
    const stats = statSync(path);
    return `${stats.dev}:${stats.ino}`;
  } catch {
    return "missing";
  }
}

export type Statement<Row = unknown> = BetterSqlite.Statement<unknown[], Row>;
type Connection = BetterSqlite.Database;

const LABEL = "run state store";

/** Commits one row of the `write_probe` table: at startup, and for readiness after a failed write. */
const WRITE_PROBE =
  "INSERT INTO write_probe (id, writes) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET writes = writes + 1";

/** How the writer thread opens its connection. */
export interface WriterSettings {
  busyTimeoutMs: number;
  syncMode: SyncMode;
}

/** A typed handle on one open database file. */
export class SqliteDatabase {
  readonly path: string;
  private readonly connection: Connection;

  /** The file's identity when opened: if the path later names another file (or none), writes would be lost. */
  private readonly identity: string | null;

  /** The SQLite code of the last write that failed for a storage reason, until a write succeeds again. */
  private storageFailure: string | null = null;

  private readonly writerSettings: WriterSettings;
  /** Started on the first write sent to it. */
  private writer: SqliteWriter | undefined;

  constructor(path: string, connection: Connection, writerSettings: WriterSettings) {
    this.path = path;
    this.connection = connection;
    this.identity = fileIdentity(path);
    this.writerSettings = writerSettings;
  }

  prepare<Row>(sql: string): Statement<Row> {
    return this.connection.prepare<unknown[], Row>(sql);
  }

  /** Runs one statement (or a few that need no common snapshot) outside a transaction. */
  query<T>(label: string, work: () => T): T {
    return this.guard(label, work);
  }

  /** Runs `work` in a read transaction: every read inside sees one consistent snapshot. */
  read<T>(label: string, work: () => T): T {
    return this.guard(label, () => this.connection.transaction(work).deferred());
  }

  /**
   * Runs `work` in a `BEGIN IMMEDIATE` transaction: it takes the write lock before reading, so a
   * read-check-write inside cannot interleave with another connection's (other processes included).
   */
  write<T>(label: string, work: () => T): T {
    const result = this.guard(label, () => this.connection.transaction(work).immediate(), true);
    this.storageFailure = null;
    return result;
  }

  /**
   * Commits `steps` on the writer thread, in the next group commit (one transaction with others, all or nothing
   * for these steps); settles once that transaction is durable, or refused at a step that had to change a row
   * and did not (nothing of it written). Storage failures reject with the same typed errors as `write`.
   */
  commitOffThread(steps: WriteStep[]): Promise<WriteResult> {
    if (!this.connection.open) return Promise.reject(storeError(LABEL, CLOSED));
    return this.writerThread().write(steps);
  }

  /** A PRAGMA on the writer thread's connection (settings such as `max_page_count` are per connection). */
  writerPragma(pragma: string): Promise<unknown> {
    if (!this.connection.open) return Promise.reject(storeError(LABEL, CLOSED));
    return this.writerThread().pragma(pragma);
  }

  private writerThread(): SqliteWriter {
    this.writer ??= new SqliteWriter(
      { path: this.path, busyTimeoutMs: this.writerSettings.busyTimeoutMs, syncMode: this.writerSettings.syncMode },
      {
        failure: (failure) => {
          if (failure.code !== null && STORAGE_FAILURES.test(failure.code)) this.storageFailure = failure.code;
          return storeError(LABEL, failure);
        },
        committed: () => {
          this.storageFailure = null;
        },
        lost: () => {
          this.storageFailure = "writer thread stopped";
        },
      },
    );
    return this.writer;
  }

  /** Current value of a PRAGMA, e.g. `journal_mode`. */
  pragma(name: string): unknown {
    return this.connection.pragma(name, { simple: true });
  }

  /**
   * Readiness: the connection is open, still writes the file at `path`, and answers `SELECT 1`; after a write
   * failed for a storage reason, only once a write succeeds again (this one tries the write probe).
   */
  async ready(): Promise<boolean> {
    if (!this.connection.open || fileIdentity(this.path) !== this.identity) return false;
    try {
      // The probe goes the way of the writes that failed: through the writer thread (started anew if it stopped).
      if (this.storageFailure !== null) return "committed" in (await this.commitOffThread([PROBE_STEP]));
      return this.connection.prepare<[], { one: number }>("SELECT 1 AS one").get()?.one === 1;
    } catch {
      return false;
    }
  }

  /** Commits a one-row write (the `write_probe` table); throws the store error when the file does not take it. */
  writeProbe(): void {
    this.write(LABEL, () => this.connection.prepare(WRITE_PROBE).run());
  }

  /** SQLite's own consistency check (`integrity_check`, or the faster `quick_check`): the problems found. */
  integrityProblems(mode: "full" | "quick", limit = 100): string[] {
    const pragma = mode === "full" ? "integrity_check" : "quick_check";
    const rows = this.guard("run state store", () => this.connection.pragma(`${pragma}(${limit})`) as object[]);
    const lines = rows.map((row) => String(Object.values(row)[0]));
    return lines.length === 1 && lines[0] === "ok" ? [] : lines;
  }

  /**
   * Copies the database to a new file with SQLite's online backup API, in one step, so the copy is one
   * consistent snapshot even while other connections (other processes included) keep committing.
   */
  async backup(to: string): Promise<void> {
    const allAtOnce = () => 0x7fffffff;
    await this.connection.backup(to, { progress: allAtOnce }).catch((error: unknown) => {
      throw new ControlPlaneError("store_error", `backup to ${to} failed: ${messageOf(error)}`);
    });
  }

  /**
   * Closes the file: writes not yet sent to the writer thread are refused (never written), groups it is committing
   * finish first. Settles once the writer thread is gone. This thread's connection closes first, so that the
   * writer's is the last one: it moves the WAL into the file as it closes, leaving one self-contained file.
   */
  close(): Promise<void> {
    if (this.connection.open) this.connection.close();
    return this.writer?.close() ?? Promise.resolve();
  }

  /**
   * Turns driver failures (busy past the timeout, I/O errors, a closed handle) into a typed store error; a full
   * disk into the retryable `StorageFullError`. A write that failed for a storage reason makes the file not ready.
   */
  private guard<T>(label: string, work: () => T, writing = false): T {
    try {
      return work();
    } catch (error) {
      if (error instanceof DecisionGateError) throw error;
      const code = sqliteCode(error);
      if (writing && code !== null && STORAGE_FAILURES.test(code)) this.storageFailure = code;
      throw storeError(label, { code, message: messageOf(error) });
    }
  }
}

const CLOSED: SqliteFailure = { code: null, message: "The database connection is not open" };
const PROBE_STEP: WriteStep = { sql: WRITE_PROBE, params: {} };

/** The typed store error of a driver failure: a full disk is the retryable `StorageFullError`. */
function storeError(label: string, { code, message }: SqliteFailure): DecisionGateError {
  if (code?.startsWith("SQLITE_FULL")) {
    return new StorageFullError(`${label} full: ${message}; nothing was recorded, retry later`, { sqlite_code: code });
  }
  return new ControlPlaneError("store_error", `${label} error: ${message}`, { sqlite_code: code });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Opens (creating when missing) the database at `options.path` with the configured journal and sync modes,
 * and migrates it to the latest schema version.
 */
export function openSqliteDatabase(
  options: SqliteOptions,
  migrations: readonly Migration[] = STORE_MIGRATIONS,
): SqliteDatabase {
  checkOptions(options);
  const path = resolve(options.path);
  if (isDirectory(path)) throw new InvalidInputError(`sqlite store path is a directory: ${path}`);
  const timeout = Number(options.busy_timeout_ms);
  let connection: Connection;
  try {
    mkdirSync(dirname(path), { recursive: true });
    connection = new BetterSqlite(path, { timeout });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ControlPlaneError("store_error", `run state store error: cannot open ${path}: ${message}`);
  }
  const database = new SqliteDatabase(path, connection, { busyTimeoutMs: timeout, syncMode: options.sync_mode });
  try {
    database.query("run state store", () => applyPragmas(connection, options, timeout));
    migrate(database, migrations);
    database.writeProbe();
  } catch (error) {
    database.close();
    throw openFailure(path, error);
  }
  return database;
}

/**
 * A file that opened but cannot take a write (read-only file or directory, full disk, I/O error) is refused at
 * startup, naming it: serving from it would answer reads and fail every call that records something. A file
 * SQLite finds damaged is refused as damaged.
 */
function openFailure(path: string, error: unknown): unknown {
  const code = error instanceof DecisionGateError ? error.details?.sqlite_code : sqliteCode(error);
  if (typeof code !== "string" || !STORAGE_FAILURES.test(code)) return error;
  const reason = messageOf(error).replace(/^run state store (error|full): /, "");
  if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) return storeDamagedError(path, [`sqlite: ${reason}`]);
  return new ControlPlaneError(
    "store_unwritable",
    `run state store error: cannot write ${path}: ${reason} (the file and its directory must be writable by this process, on a disk with free space)`,
    { path, sqlite_code: code },
  );
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The modes end up in PRAGMA statements, so only the known spellings get there. */
function checkOptions(options: SqliteOptions): void {
  if (options.journal_mode !== "wal" && options.journal_mode !== "delete") {
    throw new InvalidInputError(`unsupported journal_mode: ${String(options.journal_mode)}`);
  }
  if (options.sync_mode !== "full" && options.sync_mode !== "normal") {
    throw new InvalidInputError(`unsupported sync_mode: ${String(options.sync_mode)}`);
  }
  const timeout = Number(options.busy_timeout_ms);
  if (!Number.isSafeInteger(timeout) || timeout < 0) {
    throw new InvalidInputError(`invalid busy_timeout_ms: ${String(options.busy_timeout_ms)}`);
  }
}

function applyPragmas(connection: Connection, options: SqliteOptions, timeout: number): void {
  connection.pragma(`busy_timeout = ${timeout}`);
  connection.pragma("foreign_keys = ON");
  const journal = connection.pragma(`journal_mode = ${options.journal_mode}`, { simple: true });
  if (journal !== options.journal_mode) {
    throw new ControlPlaneError(
      "store_error",
      `run state store error: journal_mode ${options.journal_mode} not applied`,
    );
  }
  connection.pragma(`synchronous = ${options.sync_mode}`);
}

/** The schema version of the file: the highest applied migration, 0 for a new file. */
export function schemaVersion(database: SqliteDatabase): number {
  const row = database
    .prepare<{ version: number | null }>("SELECT max(version) AS version FROM schema_migrations")
    .get();
  return row?.version ?? 0;
}

/**
 * Applies every migration newer than the file's version, each in its own `BEGIN IMMEDIATE` transaction (so
 * processes opening the same new file concurrently apply each step once). A file written by a newer build
 * is refused rather than used with a schema this build does not know.
 */
export function migrate(database: SqliteDatabase, migrations: readonly Migration[]): void {
  const label = "run state store";
  database.write(label, () => {
    database
      .prepare(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
      )
      .run();
    // One row that `writeProbe` rewrites: at startup, and for readiness after a failed write.
    database
      .prepare(
        "CREATE TABLE IF NOT EXISTS write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), writes INTEGER NOT NULL)",
      )
      .run();
  });
  const latest = migrations.at(-1)?.version ?? 0;
  for (const migration of migrations) {
    database.write(label, () => {
      const current = schemaVersion(database);
      if (current > latest) throw newerSchemaError(database.path, current, latest);
      if (current >= migration.version) return;
      for (const step of migration.steps) database.prepare(step).run();
      database
        .prepare("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)")
        .run(migration.version, migration.name, Date.now());
    });
  }
  const current = schemaVersion(database);
  if (current > latest) throw newerSchemaError(database.path, current, latest);
}

function newerSchemaError(path: string, found: number, supported: number): ControlPlaneError {
  return new ControlPlaneError(
    "store_version_mismatch",
    `run state store version mismatch: unsupported schema version: ${found} (this build supports up to ${supported}; ${path} was written by a newer Decision Gate)`,
    { found, supported },
  );
}
