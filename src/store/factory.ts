import { resolve } from "node:path";
import { InvalidInputError } from "../core/errors.js";
import type { RunStateStore, RunStoreVerifier } from "../core/run/store.js";
import { MemoryRunStateStore } from "./memory/run-state.js";
import { MemoryScenarioRegistry } from "./memory/scenario-registry.js";
import { MemorySchemaRegistry } from "./memory/schema-registry.js";
import { openPostgresDatabase, type PostgresDatabase } from "./postgres/database.js";
import { PostgresRunStateStore } from "./postgres/run-state.js";
import { PostgresScenarioRegistry } from "./postgres/scenario-registry.js";
import { PostgresSchemaRegistry } from "./postgres/schema-registry.js";
import { DATABASE_URL_ENV, databaseUrlProblem } from "./postgres/url.js";
import type { ScenarioRegistry, SchemaRegistry } from "./registries.js";
import { MAX_SCHEMA_BYTES, type SchemaLimits } from "./registry-common.js";
import { type JournalMode, openSqliteDatabase, type SqliteDatabase, type SyncMode } from "./sqlite/database.js";
import { SqliteRunStateStore } from "./sqlite/run-state.js";
import { SqliteScenarioRegistry } from "./sqlite/scenario-registry.js";
import { SqliteSchemaRegistry } from "./sqlite/schema-registry.js";
import {
  checkRunDatabase,
  checkStoreFile,
  DEFAULT_STARTUP_CHECK,
  problemsOf,
  type StartupCheck,
  type StoreCheckDepth,
  type StoreFileCheck,
  storeDamagedError,
} from "./store-check.js";

/* Builds the stores from the validated `[run_state_store]` and `[schema_registry]` sections (interface §5.16–17). */

/** Keys shared by both sections; integers may arrive as `bigint` from the lossless config parser. */
export interface StoreSectionConfig {
  type: "memory" | "sqlite" | "postgres";
  path?: string | null;
  /** PostgreSQL connection URL; absent: `DECISION_GATE_DATABASE_URL`. */
  url?: string | null;
  /** PostgreSQL pool size; absent: `DEFAULT_MAX_CONNECTIONS`. */
  max_connections?: number;
  busy_timeout_ms?: number | bigint;
  journal_mode?: JournalMode;
  sync_mode?: SyncMode;
}

export interface RunStateStoreConfig extends StoreSectionConfig {
  /**
   * Accepted for compatibility and ignored: the reference keeps one full snapshot per save and prunes old ones;
   * this store keeps one append-only log per run in which every record is live, so there is nothing to prune.
   */
  max_versions?: number | bigint | null;
  /** What is verified before a SQLite store is served (docs/STORAGE.md). */
  startup_check?: StartupCheck;
}

export interface SchemaRegistryConfig extends StoreSectionConfig {
  max_schema_bytes?: number | bigint;
  max_entries?: number | bigint | null;
}

export interface StoresConfig {
  run_state_store: RunStateStoreConfig;
  schema_registry: SchemaRegistryConfig;
}

export interface Stores {
  runs: RunStateStore & RunStoreVerifier;
  /** In the run-state database when `run_state_store` is sqlite or postgres, so definitions survive restarts (D2). */
  scenarios: ScenarioRegistry;
  schemas: SchemaRegistry;
  /**
   * Checks every SQLite file opened here (SQLite's own check and, in the run-state file, every run) and every run
   * in a PostgreSQL run-state database.
   */
  check(depth: StoreCheckDepth, progress?: (checked: number, total: number) => void): Promise<StoreFileCheck[]>;
  /** Copies the run-state file to `to` with SQLite's online backup API (a consistent snapshot of a live store). */
  backup(to: string): Promise<void>;
  /** Closes every database opened here (once, also when both sections share a file). */
  close(): Promise<void>;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * Opens the configured stores; a SQLite file that is damaged (per `startup_check`) is refused, naming it.
 * A `postgres` section without `url` connects to `DECISION_GATE_DATABASE_URL` from `env`.
 */
export async function openStores(config: StoresConfig, env: NodeJS.ProcessEnv = process.env): Promise<Stores> {
  const opened: SqliteDatabase[] = [];
  /** PostgreSQL databases by URL: sections naming the same URL share one pool. */
  const databases = new Map<string, PostgresDatabase>();
  const closeAll = async () => {
    // A SQLite file's close settles once its writer thread finished the commits it had in flight.
    await Promise.all([...opened, ...databases.values()].map((db) => db.close()));
  };
  try {
    const runPg = await openPostgresSection(config.run_state_store, "run_state_store", databases, env);
    const schemaPg = await openPostgresSection(config.schema_registry, "schema_registry", databases, env);
    const runDb = openSection(config.run_state_store, "run_state_store", opened);
    const schemaDb = openSection(config.schema_registry, "schema_registry", opened, config.run_state_store);
    const limits = schemaLimits(config.schema_registry);
    const runs =
      runPg !== undefined
        ? new PostgresRunStateStore(runPg)
        : runDb === undefined
          ? new MemoryRunStateStore()
          : new SqliteRunStateStore(runDb);
    const checkFiles = async (depth: StoreCheckDepth, progress?: (checked: number, total: number) => void) => {
      const found: StoreFileCheck[] = [];
      for (const db of opened) found.push(await checkStoreFile(db, db === runDb ? runs : null, depth, progress));
      return found;
    };
    const stores: Stores = {
      runs,
      scenarios:
        runPg !== undefined
          ? new PostgresScenarioRegistry(runPg)
          : runDb === undefined
            ? new MemoryScenarioRegistry()
            : new SqliteScenarioRegistry(runDb),
      schemas:
        schemaPg !== undefined
          ? new PostgresSchemaRegistry(schemaPg, limits)
          : schemaDb === undefined
            ? new MemorySchemaRegistry(limits)
            : new SqliteSchemaRegistry(schemaDb, limits),
      check: async (depth, progress) => [
        ...(await checkFiles(depth, progress)),
        ...(runPg === undefined ? [] : [await checkRunDatabase(runPg.name, runs, depth, progress)]),
      ],
      backup: async (to) => {
        if (runDb === undefined) {
          throw new InvalidInputError(
            runPg === undefined
              ? "run_state_store is in memory: there is no file to back up"
              : "run_state_store is in PostgreSQL: back it up with pg_dump (docs/DEPLOYMENT.md)",
          );
        }
        await runDb.backup(to);
      },
      close: closeAll,
    };
    const startupCheck = config.run_state_store.startup_check ?? DEFAULT_STARTUP_CHECK;
    if (startupCheck !== "off") {
      const damaged = (await checkFiles(startupCheck)).find((found) => problemsOf(found).length > 0);
      if (damaged !== undefined) throw storeDamagedError(damaged.path, problemsOf(damaged));
    }
    return stores;
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * Connects a `postgres` section (else undefined), to its `url` or `DECISION_GATE_DATABASE_URL`; sections naming the
 * same URL share one pool. Errors name the field or the variable, never the URL (it may hold a password).
 */
async function openPostgresSection(
  section: StoreSectionConfig,
  name: "run_state_store" | "schema_registry",
  databases: Map<string, PostgresDatabase>,
  env: NodeJS.ProcessEnv,
): Promise<PostgresDatabase | undefined> {
  if (section.type !== "postgres") return undefined;
  const configured = section.url ?? undefined;
  const url = configured ?? env[DATABASE_URL_ENV];
  if (url === undefined || url === "") {
    throw new InvalidInputError(`postgres ${name} requires url (or the environment variable ${DATABASE_URL_ENV})`);
  }
  const problem = databaseUrlProblem(url);
  if (problem !== undefined) {
    throw new InvalidInputError(`${configured === undefined ? DATABASE_URL_ENV : `${name}.url`} ${problem}`);
  }
  let db = databases.get(url);
  if (db === undefined) {
    db = await openPostgresDatabase({ url, maxConnections: section.max_connections });
    databases.set(url, db);
  }
  return db;
}

/** Opens a section's database, reusing the run-state connection when `shareWith` names the same file. */
function openSection(
  section: StoreSectionConfig,
  name: "run_state_store" | "schema_registry",
  opened: SqliteDatabase[],
  shareWith?: StoreSectionConfig,
): SqliteDatabase | undefined {
  if (section.type === "memory") return undefined;
  if (section.type === "postgres") return undefined;
  const options = sqliteOptions(section, name);
  const shared = opened.find((db) => db.path === resolve(options.path));
  if (shared !== undefined && shareWith !== undefined) {
    checkSameSettings(options, sqliteOptions(shareWith, "run_state_store"), shared.path);
    return shared;
  }
  const db = openSqliteDatabase(options);
  opened.push(db);
  return db;
}

function sqliteOptions(section: StoreSectionConfig, name: string) {
  if (section.path === undefined || section.path === null || section.path === "") {
    throw new InvalidInputError(`sqlite ${name} requires path`);
  }
  return {
    path: section.path,
    journal_mode: section.journal_mode ?? "wal",
    sync_mode: section.sync_mode ?? "full",
    busy_timeout_ms: Number(section.busy_timeout_ms ?? DEFAULT_BUSY_TIMEOUT_MS),
  };
}

/** One shared connection has one set of PRAGMAs, so the two sections must agree on them. */
function checkSameSettings(a: ReturnType<typeof sqliteOptions>, b: ReturnType<typeof sqliteOptions>, path: string) {
  for (const key of ["journal_mode", "sync_mode", "busy_timeout_ms"] as const) {
    if (a[key] !== b[key]) {
      throw new InvalidInputError(
        `run_state_store and schema_registry share ${path} but set different ${key}: ${b[key]} and ${a[key]}`,
      );
    }
  }
}

function schemaLimits(section: SchemaRegistryConfig): SchemaLimits {
  const maxEntries = section.max_entries ?? undefined;
  return {
    maxSchemaBytes: Number(section.max_schema_bytes ?? MAX_SCHEMA_BYTES),
    maxEntries: maxEntries === undefined ? undefined : Number(maxEntries),
  };
}
