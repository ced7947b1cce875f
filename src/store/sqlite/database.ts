import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import BetterSqlite from "better-sqlite3";
import type { z } from "zod";
import { ControlPlaneError, DecisionGateError, InvalidInputError } from "../../core/errors.js";
import { decode } from "../../core/wire/common.js";
import { sha256Hex } from "../../json/hash.js";
import { parseJsonBytes } from "../../json/parse.js";

/*
 * One SQLite database file: opening it with the configured PRAGMAs, bringing its schema up to date with
 * versioned migrations, and running reads and writes as transactions with typed errors.
 */

export type JournalMode = "wal" | "delete";
export type SyncMode = "full" | "normal";

export interface SqliteOptions {
  path: string;
  journal_mode: JournalMode;
  sync_mode: SyncMode;
  busy_timeout_ms: number | bigint;
}

export interface Migration {
  version: number;
  name: string;
  /** SQL statements, applied in order inside one transaction. */
  steps: string[];
}

/** The schema of a Decision Gate store file: run state, scenario registry and schema registry tables. */
export const STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "run heads, append-only run records, scenario and data-shape registries",
    steps: [
      `CREATE TABLE runs (
        run_pk INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        namespace_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        scenario_id TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        current_stage_id TEXT NOT NULL,
        stage_entered_at TEXT NOT NULL,
        status TEXT NOT NULL,
        dispatch_targets TEXT NOT NULL,
        triggers INTEGER NOT NULL,
        gate_evals INTEGER NOT NULL,
        decisions INTEGER NOT NULL,
        packets INTEGER NOT NULL,
        submissions INTEGER NOT NULL,
        tool_calls INTEGER NOT NULL,
        version INTEGER NOT NULL,
        chain_tip TEXT NOT NULL,
        head_hash TEXT NOT NULL,
        UNIQUE (tenant_id, namespace_id, run_id)
      )`,
      `CREATE TABLE run_records (
        run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
        position INTEGER NOT NULL,
        kind TEXT NOT NULL
          CHECK (kind IN ('trigger', 'gate_eval', 'decision', 'packet', 'submission', 'tool_call')),
        seq INTEGER NOT NULL,
        trigger_id TEXT,
        decision_id TEXT,
        submission_id TEXT,
        record_json BLOB NOT NULL,
        record_sha256 TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        PRIMARY KEY (run_pk, position)
      )`,
      "CREATE UNIQUE INDEX run_records_by_seq ON run_records (run_pk, kind, seq)",
      // Partial: tool-call records, the most frequent, carry no lookup id and stay out of these indexes.
      `CREATE INDEX run_records_by_trigger ON run_records (run_pk, kind, trigger_id, seq)
        WHERE trigger_id IS NOT NULL`,
      `CREATE INDEX run_records_by_decision ON run_records (run_pk, kind, decision_id, seq)
        WHERE decision_id IS NOT NULL`,
      `CREATE INDEX run_records_by_submission ON run_records (run_pk, kind, submission_id, seq)
        WHERE submission_id IS NOT NULL`,
      `CREATE TABLE scenarios (
        namespace_id TEXT NOT NULL,
        scenario_id TEXT NOT NULL,
        tenant_scope TEXT NOT NULL,
        spec_json BLOB NOT NULL,
        spec_hash TEXT NOT NULL,
        PRIMARY KEY (namespace_id, scenario_id, tenant_scope)
      )`,
      `CREATE TABLE data_shapes (
        tenant_id TEXT NOT NULL,
        namespace_id TEXT NOT NULL,
        schema_id TEXT NOT NULL,
        version TEXT NOT NULL,
        record_json BLOB NOT NULL,
        record_sha256 TEXT NOT NULL,
        PRIMARY KEY (tenant_id, namespace_id, schema_id, version)
      )`,
    ],
  },
  {
    version: 2,
    name: "action receipts beside each run's records",
    steps: [
      `CREATE TABLE action_receipts (
        run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
        seq INTEGER NOT NULL,
        decision_id TEXT NOT NULL,
        receipt_json BLOB NOT NULL,
        row_sha256 TEXT NOT NULL,
        PRIMARY KEY (run_pk, seq)
      )`,
      "CREATE INDEX action_receipts_by_decision ON action_receipts (run_pk, decision_id)",
    ],
  },
];

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

/** A typed handle on one open database file. */
export class SqliteDatabase {
  readonly path: string;
  private readonly connection: Connection;

  /** The file's identity when opened: if the path later names another file (or none), writes would be lost. */
  private readonly identity: string | null;

  constructor(path: string, connection: Connection) {
    this.path = path;
    this.connection = connection;
    this.identity = fileIdentity(path);
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
    return this.guard(label, () => this.connection.transaction(work).immediate());
  }

  /** Inside `write`: runs `work` in a savepoint, so a failure rolls back `work` alone. */
  savepoint<T>(label: string, work: () => T): T {
    return this.guard(label, () => this.connection.transaction(work)());
  }

  /** Current value of a PRAGMA, e.g. `journal_mode`. */
  pragma(name: string): unknown {
    return this.connection.pragma(name, { simple: true });
  }

  /** Readiness: the connection is open, still writes the file at `path`, and answers `SELECT 1`. */
  ready(): boolean {
    if (!this.connection.open || fileIdentity(this.path) !== this.identity) return false;
    try {
      return this.connection.prepare<[], { one: number }>("SELECT 1 AS one").get()?.one === 1;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.connection.open) this.connection.close();
  }

  /** Turns driver failures (busy past the timeout, I/O errors, a closed handle) into a typed store error. */
  private guard<T>(label: string, work: () => T): T {
    try {
      return work();
    } catch (error) {
      if (error instanceof DecisionGateError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      const code = (error as { code?: unknown }).code;
      throw new ControlPlaneError("store_error", `${label} error: ${message}`, {
        sqlite_code: typeof code === "string" ? code : null,
      });
    }
  }
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
  const database = new SqliteDatabase(path, connection);
  try {
    database.query("run state store", () => applyPragmas(connection, options, timeout));
    migrate(database, migrations);
  } catch (error) {
    database.close();
    throw error;
  }
  return database;
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

/**
 * A stored row failed verification. The store fails closed and names the item, e.g.
 * `run state corrupt: 1/2/run-1: record 7 (decision 3): hash mismatch`.
 */
export function storeCorrupt(store: "run state" | "scenario registry" | "schema registry", item: string, what: string) {
  return new ControlPlaneError("store_corrupt", `${store} corrupt: ${item}: ${what}`, { item });
}

/**
 * Reads back a stored canonical-JSON blob as untrusted: the size, the sha256 recorded beside it, the JSON and
 * the record's schema must all check out; otherwise `fail` builds the error naming what is wrong.
 */
export function decodeVerified<T extends z.ZodType>(
  schema: T,
  bytes: unknown,
  sha256: unknown,
  maxBytes: number,
  fail: (what: string) => Error,
): z.output<T> {
  if (!(bytes instanceof Uint8Array)) throw fail("stored bytes missing");
  if (bytes.length > maxBytes) throw fail(`stored bytes exceed size limit: ${bytes.length} bytes (max ${maxBytes})`);
  if (sha256Hex(bytes) !== sha256) throw fail("hash mismatch");
  try {
    return decode(schema, parseJsonBytes(bytes), "record");
  } catch (error) {
    throw fail(`undecodable: ${error instanceof Error ? error.message : String(error)}`);
  }
}
