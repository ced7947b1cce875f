import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { LoadedConfig } from "../config/load.js";
import type { DecisionGateConfig } from "../config/schema.js";
import { openStores, type Stores } from "../store/factory.js";
import { problemsOf, type StoreCheckDepth, type StoreFileCheck } from "../store/store-check.js";
import { CliFailure } from "./failure.js";

type LoadOptions = { config?: string; strictConfig?: boolean };

/** `decision-gate store check` (SQLite or PostgreSQL) and `decision-gate store backup` (SQLite). */
export function registerStoreCommands(program: Command, load: (options: LoadOptions) => Promise<LoadedConfig>): void {
  const store = program.command("store").description("Check and back up the store of a configuration");
  store
    .command("check")
    .description(
      "Verify the store: SQLite's integrity_check (SQLite files) and every run's records, chain and lookups (exit 1 if damaged)",
    )
    .option("--config <path>", "configuration file naming the store")
    .option("--quick", 'only quick_check and each run\'s newest record (what startup_check = "quick" checks)')
    .action(async (options: LoadOptions & { quick?: boolean }) => {
      const { config } = await load(options);
      const depth: StoreCheckDepth = options.quick ? "quick" : "full";
      const healthy = await withStores(config, (stores) => report(stores, depth), { postgres: true });
      if (!healthy) process.exitCode = 1;
    });
  store
    .command("backup")
    .description("Copy a live store with SQLite's online backup API, then verify the copy (exit 1 if damaged)")
    .option("--config <path>", "configuration file naming the store")
    .requiredOption("--to <file>", "the backup file to write (must not exist)")
    .action(async (options: LoadOptions & { to: string }) => {
      const { config } = await load(options);
      const to = resolve(options.to);
      if (existsSync(to)) throw new CliFailure(`refusing to overwrite ${to}: name a file that does not exist`);
      await withStores(config, (stores) => stores.backup(to));
      process.stdout.write(`Backed up ${config.run_state_store.path} to ${to}\n`);
      const copy: DecisionGateConfig = {
        ...config,
        run_state_store: { ...config.run_state_store, path: to },
        schema_registry: { ...config.schema_registry, type: "memory", path: undefined },
      };
      if (!(await withStores(copy, (stores) => report(stores, "full")))) process.exitCode = 1;
    });
}

/**
 * Opens the configured stores without the startup check (these commands report damage instead of refusing it); a
 * PostgreSQL run state only with `postgres` (`store backup` copies files: PostgreSQL is backed up with pg_dump).
 */
async function withStores<T>(
  config: DecisionGateConfig,
  work: (stores: Stores) => Promise<T>,
  accepts: { postgres: boolean } = { postgres: false },
): Promise<T> {
  const section = config.run_state_store;
  if (section.type === "postgres" && !accepts.postgres) {
    throw new CliFailure("run_state_store is in PostgreSQL: back it up with pg_dump (see docs/DEPLOYMENT.md)");
  }
  if (section.type === "memory" || (section.type === "sqlite" && section.path === undefined)) {
    throw new CliFailure('run_state_store is in memory: there is no store file (set type = "sqlite" and a path)');
  }
  for (const path of [
    section.path,
    config.schema_registry.type === "sqlite" ? config.schema_registry.path : undefined,
  ]) {
    if (path !== undefined && !existsSync(path)) throw new CliFailure(`no store file at ${path}`);
  }
  const stores = await openStores({
    run_state_store: { ...section, startup_check: "off" },
    schema_registry: config.schema_registry,
  }).catch((error: unknown) => {
    throw new CliFailure(`cannot open the store: ${error instanceof Error ? error.message : String(error)}`);
  });
  try {
    return await work(stores);
  } finally {
    await stores.close();
  }
}

/** Checks every store file, printing what was checked and every problem; true when all are healthy. */
async function report(stores: Stores, depth: StoreCheckDepth): Promise<boolean> {
  const sqliteCheck = depth === "full" ? "integrity_check" : "quick_check";
  const files = await stores.check(depth, terminalProgress());
  let problems = 0;
  for (const file of files) {
    const found = problemsOf(file);
    problems += found.length;
    if (file.sqlite !== null) {
      process.stdout.write(`${file.path}: SQLite ${sqliteCheck}: ${file.sqlite.length === 0 ? "ok" : "damaged"}\n`);
    }
    if (file.runs !== null) process.stdout.write(`${file.path}: ${runsLine(file, depth)}\n`);
    for (const problem of found) process.stdout.write(`  ${problem}\n`);
  }
  if (problems > 0) {
    process.stdout.write(`Store damaged: ${problems} problem(s). Restore it from a backup (see docs/STORAGE.md).\n`);
  } else if (depth === "quick") {
    process.stdout.write("Quick check passed (it does not compare indexes with their tables: run without --quick).\n");
  } else {
    process.stdout.write("Store healthy.\n");
  }
  return problems === 0;
}

function runsLine(file: StoreFileCheck, depth: StoreCheckDepth): string {
  const runs = file.runs;
  if (runs === null) return "";
  const checked = depth === "full" ? `${runs.records} records verified` : `${runs.records} newest records verified`;
  const damaged = runs.problems.length === 0 ? "none damaged" : `${runs.problems.length} damaged`;
  return `${runs.runs} runs, ${checked}, ${damaged}`;
}

/** Progress on standard error, only when it is a terminal (a log or a pipe gets the result lines alone). */
function terminalProgress(): ((checked: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let shown = 0;
  return (checked, total) => {
    const now = Date.now();
    if (checked < total && now - shown < 200) return;
    shown = now;
    process.stderr.write(`\rchecking runs: ${checked}/${total}${checked === total ? "\n" : ""}`);
  };
}
