import { ControlPlaneError, DecisionGateError } from "../core/errors.js";
import type { RunStoreCheck, RunStoreVerifier } from "../core/run/store.js";

/*
 * Checking a whole store: a SQLite file's own consistency check plus the verification of every run in it, or every
 * run in a PostgreSQL database. Used by `decision-gate store check`, `store backup` (on the copy) and the startup
 * check of SQLite files (`[run_state_store] startup_check`).
 */

/**
 * How deep a check goes. `full`: `PRAGMA integrity_check` (b-trees, and every index against its table) and every
 * record of every run with its chain and lookups. `quick`: `PRAGMA quick_check` (b-trees only) and each run's head
 * and newest record. `off`: nothing.
 */
export type StoreCheckDepth = "full" | "quick";
export type StartupCheck = StoreCheckDepth | "off";

/** Chosen from measured startup times on large stores (docs/STORAGE.md, "Startup check"). */
export const DEFAULT_STARTUP_CHECK: StartupCheck = "quick";

/** What a check found in one database: a SQLite file, or a PostgreSQL database. */
export interface StoreFileCheck {
  /** The file's path, or the PostgreSQL database as `postgres://user@host:port/database`. */
  path: string;
  /** SQLite's findings, empty when it reports `ok`; null for PostgreSQL. */
  sqlite: string[] | null;
  /** The runs in the file, when it holds the run state. */
  runs: RunStoreCheck | null;
}

/** A store file that can check its own structure (SQLite's `integrity_check`); its findings, empty when sound. */
export interface SelfCheckingFile {
  readonly path: string;
  integrityProblems(depth: StoreCheckDepth): string[];
}

/** Checks one file; a check that cannot even run (a page SQLite cannot read) is reported as a problem. */
export async function checkStoreFile(
  db: SelfCheckingFile,
  runs: RunStoreVerifier | null,
  depth: StoreCheckDepth,
  progress?: (checked: number, total: number) => void,
): Promise<StoreFileCheck> {
  const sqlite = await problemOf(
    async () => db.integrityProblems(depth),
    (message) => [message],
  );
  return { path: db.path, sqlite, runs: runs === null ? null : await checkRuns(runs, depth, progress) };
}

/** Checks every run of a PostgreSQL database named `name` (it checks its own structure itself). */
export async function checkRunDatabase(
  name: string,
  runs: RunStoreVerifier,
  depth: StoreCheckDepth,
  progress?: (checked: number, total: number) => void,
): Promise<StoreFileCheck> {
  return { path: name, sqlite: null, runs: await checkRuns(runs, depth, progress) };
}

async function checkRuns(
  runs: RunStoreVerifier,
  depth: StoreCheckDepth,
  progress?: (checked: number, total: number) => void,
): Promise<RunStoreCheck> {
  return problemOf(
    () => runs.verifyRuns(depth === "full" ? "full" : "tail", progress),
    (message) => ({ runs: 0, records: 0, problems: [message] }),
  );
}

async function problemOf<T>(check: () => Promise<T>, failed: (message: string) => T): Promise<T> {
  try {
    return await check();
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    return failed(error.message);
  }
}

/** Every problem found, one line each (SQLite's first, then one per damaged run). */
export function problemsOf(check: StoreFileCheck): string[] {
  return [...(check.sqlite ?? []).map((line) => `sqlite: ${line}`), ...(check.runs?.problems ?? [])];
}

/** Refuses to serve from a damaged file, naming it and the first problems found. */
export function storeDamagedError(path: string, problems: readonly string[]): ControlPlaneError {
  const shown = problems.slice(0, 3).join("; ");
  const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : "";
  return new ControlPlaneError(
    "store_damaged",
    `run state store damaged: ${path}: ${shown}${more}. Not serving a damaged store: restore it from a backup ` +
      "(decision-gate store check lists every problem; see docs/STORAGE.md)",
    { path, problems: problems.length },
  );
}
