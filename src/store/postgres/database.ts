import pg from "pg";
import {
  ControlPlaneError,
  DecisionGateError,
  type ErrorDetails,
  InvalidInputError,
  StorageFullError,
  StoreUnavailableError,
} from "../../core/errors.js";
import { Slots } from "../../net/slots.js";
import { POSTGRES_MIGRATIONS, type PostgresMigration } from "./migrations.js";
import { databaseLabel } from "./url.js";

/*
 * One PostgreSQL database shared by every replica: a connection pool, the schema brought up to date under an
 * advisory lock (replicas starting together apply each migration once), and queries and transactions with typed
 * errors. A database that cannot be reached fails calls at once with the retryable `StoreUnavailableError` and
 * makes `ready()` false; the pool reconnects by itself when the database is back.
 *
 * Errors name the database by `databaseLabel` (no password, no query options), and any text from the driver is
 * scrubbed of the password before it goes anywhere.
 */

export interface PostgresOptions {
  url: string;
  /** Connections this process keeps at most (the pool's size). */
  maxConnections?: number;
  /** How long a run's lock may sit idle before PostgreSQL ends its session (default `LOCK_IDLE_TIMEOUT_MS`). */
  lockIdleTimeoutMs?: number;
}

export const DEFAULT_MAX_CONNECTIONS = 10;
/** A new connection that takes longer fails the call (unreachable host, network partition). */
const CONNECT_TIMEOUT_MS = 5000;
/** A statement that gets no answer for this long fails (a database that hangs rather than refuses). */
const QUERY_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 2000;
/**
 * A run's advisory lock is held by a transaction that sits idle while the step it guards runs. PostgreSQL ends the
 * session of one idle for longer, so a holder that froze or lost its network (where TCP would notice only after
 * hours) keeps the run from other replicas for at most this long. A step that outlasts it loses only its place in
 * the queue: its writes are guarded on their own.
 */
const LOCK_IDLE_TIMEOUT_MS = 60_000;
/** The advisory lock key migrations run under ("DGMI"): any fixed value all replicas agree on. */
const MIGRATION_LOCK = "1145523529";
const LABEL = "run state store";

/** The queries of one transaction. */
export interface Queries {
  query<Row extends object = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
}

export type TransactionMode = "read write" | "read only";

/**
 * Driver error codes and SQLSTATEs of a database that cannot serve a call now: it cannot be reached or is going away
 * (class 08 connection exceptions, admin/crash shutdown, cannot connect now, too many connections), or it takes no
 * writes (25006: a standby, or a primary demoted by a failover). Nothing of the call was recorded; retrying is safe.
 */
const UNAVAILABLE_CODES = new Set([
  "25006",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "57P01",
  "57P02",
  "57P03",
  "53300",
]);
const UNREACHABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|not queryable/i;

/*
 * The stores' statements are a small fixed set of texts, so each is prepared once per connection (a named statement)
 * instead of being parsed and planned on every call. Texts beyond the bound run unnamed, so no caller can make
 * the set grow without limit.
 */
const MAX_NAMED_STATEMENTS = 64;
const statementNames = new Map<string, string>();

function prepared(text: string, params: readonly unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `decision_gate_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return { name, text, values: params as unknown[] };
}

export class PostgresDatabase {
  /** Connections that may hold an advisory lock at once (`withAdvisoryLock`). */
  private readonly lockSlots: Slots;

  /** The pool is shared by every store section using this URL. */
  constructor(
    private readonly pool: pg.Pool,
    /** `postgres://user@host:port/database`: how errors and logs name the database. */
    readonly name: string,
    private readonly password: string,
    private readonly lockIdleTimeoutMs = LOCK_IDLE_TIMEOUT_MS,
  ) {
    this.lockSlots = new Slots(Math.max(1, Math.floor(pool.options.max / 2)));
  }

  /** One statement, on any pooled connection, in a transaction of its own. */
  async query<Row extends object = Record<string, unknown>>(
    label: string,
    text: string,
    params: readonly unknown[] = [],
  ): Promise<Row[]> {
    try {
      return (await this.pool.query<Row>(prepared(text, params))).rows;
    } catch (error) {
      throw this.failure(label, error);
    }
  }

  /**
   * Runs `work` in one transaction on one connection: committed when it resolves, rolled back when it throws.
   * `read only` transactions are `REPEATABLE READ`: every read inside sees one snapshot.
   */
  async transaction<T>(label: string, work: (queries: Queries) => Promise<T>, mode: TransactionMode = "read write") {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.failure(label, error);
    }
    let broken = false;
    // A connection lost between two statements is reported as an event on the client: the transaction's next
    // statement fails, and the client is not reused. Without a listener the event would end the process.
    const lost = () => {
      broken = true;
    };
    client.on("error", lost);
    try {
      await client.query(mode === "read only" ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
      const result = await work({
        query: async <Row extends object>(text: string, params: readonly unknown[] = []) =>
          (await client.query<Row>(prepared(text, params))).rows,
      });
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {
        broken = true;
      });
      throw this.failure(label, error);
    } finally {
      // A connection whose rollback failed is in an unknown state: the pool closes it instead of reusing it.
      client.off("error", lost);
      client.release(broken);
    }
  }

  /**
   * Runs `work` holding the advisory lock keyed by `lockText` (hashed) in a transaction of its own, on a connection
   * checked out until `work` ends (transaction-scoped, so a pooler in transaction mode keeps it on one server
   * connection). Waiting for the lock is first come, first served; a connection lost meanwhile releases the lock
   * (which `work` cannot notice: the guards of its writes still hold), and what `work` returned is still the answer.
   * At most half the pool holds such locks at once, so `work` always finds connections for its own statements.
   */
  async withAdvisoryLock<T>(label: string, lockText: string, work: () => Promise<T>): Promise<T> {
    return this.lockSlots.run(async () => {
      // What `work` throws is its own failure, not the database's: it passes through as thrown.
      let outcome: { value: T } | { thrown: unknown } | undefined;
      const held = this.transaction(label, async (queries) => {
        await queries.query(
          "SELECT set_config('idle_in_transaction_session_timeout', $2, true), pg_advisory_xact_lock(hashtextextended($1, 0))",
          [lockText, String(this.lockIdleTimeoutMs)],
        );
        outcome = await work().then(
          (value) => ({ value }),
          (thrown: unknown) => ({ thrown }),
        );
      });
      // Once `work` has run, the lock's end is no failure of the call: a session lost meanwhile took it along.
      await held.catch((failure: unknown) => {
        if (outcome === undefined) throw failure;
      });
      if (outcome === undefined) throw new Error("advisory lock: work did not run");
      if ("thrown" in outcome) throw outcome.thrown;
      return outcome.value;
    });
  }

  /**
   * Readiness: the database answers within two seconds and takes writes (not a standby or read-only after a
   * failover). Turns false as soon as it stops answering and true again once it does, without a restart.
   */
  async ready(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
    });
    const probe = this.pool
      .query<{ read_only: string }>("SELECT current_setting('transaction_read_only') AS read_only")
      .then((result) => result.rows[0]?.read_only === "off")
      .catch(() => false);
    try {
      return await Promise.race([probe, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** The typed store error of a driver failure; already typed errors pass through. */
  failure(label: string, error: unknown): DecisionGateError {
    if (error instanceof DecisionGateError) return error;
    const code = (error as { code?: unknown } | null)?.code;
    const details: ErrorDetails = typeof code === "string" ? { postgres_code: code } : {};
    const message = this.scrub(error instanceof Error ? error.message : String(error));
    if ((typeof code === "string" && UNAVAILABLE_CODES.has(code)) || UNREACHABLE_MESSAGES.test(message)) {
      return new StoreUnavailableError(`${label} unavailable: ${this.name}: ${message}; retry later`, details);
    }
    if (code === "22021" || code === "22P05") {
      return new InvalidInputError(
        `${label} cannot store the text of this call: ${message}. PostgreSQL text holds no NUL (U+0000) character: ` +
          "ids and names stored in PostgreSQL must not contain one. Nothing was recorded",
        details,
      );
    }
    if (code === "53100") {
      return new StorageFullError(
        `${label} full: ${this.name}: ${message}; nothing was recorded, retry later`,
        details,
      );
    }
    return new ControlPlaneError("store_error", `${label} error: ${this.name}: ${message}`, details);
  }

  private scrub(text: string): string {
    return this.password === "" ? text : text.replaceAll(this.password, "***");
  }
}

/**
 * Connects to the database at `options.url` and brings its schema up to date. An unreachable database, a refused
 * login or a schema newer than this build fails here, naming the database (never its password).
 */
export async function openPostgresDatabase(
  options: PostgresOptions,
  migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS,
): Promise<PostgresDatabase> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    application_name: "decision-gate",
    // A decision is acknowledged once its commit returns: only with synchronous_commit on is it flushed by then,
    // whatever the database's default.
    options: "-c synchronous_commit=on",
  });
  // An idle connection lost (database restart, failover) is an event, not a crash: the pool drops it and opens a
  // new one on demand.
  pool.on("error", () => {});
  const database = new PostgresDatabase(
    pool,
    databaseLabel(options.url),
    passwordOf(options.url),
    options.lockIdleTimeoutMs,
  );
  try {
    await migrate(database, migrations);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  return database;
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return "";
  }
}

/**
 * Applies every migration newer than the database's version in one transaction, under an advisory transaction
 * lock, so replicas starting at once apply each exactly once. A database migrated by a newer build is refused.
 */
export async function migrate(database: PostgresDatabase, migrations: readonly PostgresMigration[]): Promise<void> {
  const latest = migrations.at(-1)?.version ?? 0;
  await database.transaction(LABEL, async (queries) => {
    await queries.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await queries.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const [row] = await queries.query<{ version: number }>(
      "SELECT coalesce(max(version), 0)::integer AS version FROM schema_migrations",
    );
    const current = row?.version ?? 0;
    if (current > latest) throw newerSchemaError(database.name, current, latest);
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      for (const step of migration.steps) await queries.query(step);
      await queries.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
    }
  });
}

function newerSchemaError(name: string, found: number, supported: number): ControlPlaneError {
  return new ControlPlaneError(
    "store_version_mismatch",
    `run state store version mismatch: unsupported schema version: ${found} (this build supports up to ${supported}; ${name} was migrated by a newer Decision Gate)`,
    { found, supported },
  );
}
