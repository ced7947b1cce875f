import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openSqliteDatabase } from "../src/store/sqlite/database.js";
import { SqliteRunStateStore } from "../src/store/sqlite/run-state.js";
import { openPlane, RunDriver } from "./plane.js";

/*
 * `npx tsx bench/store-check.ts [runs] [triggers per run] ...`: how long the startup check takes on large stores
 * (docs/STORAGE.md, "Startup check"). Builds a store of `runs` runs with `triggers` recorded holds each
 * (4 records per trigger), then times opening it and each check depth. Arguments come in pairs; the default
 * measures the stores of the table in STORAGE.md: 50 × 1,000, 100 × 1,000 and 10,000 × 10 triggers.
 */

const CONCURRENT_RUNS = 50;

async function build(path: string, runs: number, triggers: number): Promise<void> {
  const { db, plane } = openPlane(path, "normal");
  try {
    for (let first = 0; first < runs; first += CONCURRENT_RUNS) {
      const drivers = Array.from({ length: Math.min(CONCURRENT_RUNS, runs - first) }, (_, r) => {
        return new RunDriver(plane, `run-${first + r}`);
      });
      await Promise.all(drivers.map((driver) => driver.start()));
      for (let i = 0; i < triggers; i++) await Promise.all(drivers.map((driver) => driver.next()));
    }
  } finally {
    db.close();
  }
}

/**
 * Wall and CPU seconds of `work`. The check is synchronous and reads a file in the page cache, so on an idle
 * machine the two agree; CPU time stays meaningful when other processes compete for the cores.
 */
async function timed<T>(work: () => T | Promise<T>): Promise<[T, string]> {
  const [start, cpuStart] = [performance.now(), process.cpuUsage()];
  const result = await work();
  const cpu = process.cpuUsage(cpuStart);
  const seconds = (performance.now() - start) / 1000;
  return [result, `${seconds.toFixed(2)} s (CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s)`];
}

async function measure(runs: number, triggers: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "dg-bench-check-"));
  try {
    const path = join(dir, "store.db");
    await build(path, runs, triggers);
    const [db, open] = await timed(() =>
      openSqliteDatabase({ path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 }),
    );
    const store = new SqliteRunStateStore(db);
    const mib = (statSync(path).size / 2 ** 20).toFixed(0);
    const line = [`${runs} runs × ${triggers} triggers, ${runs * triggers * 4} records, ${mib} MiB: open ${open}`];
    for (const depth of ["quick", "full"] as const) {
      const [sqlite, sqliteTime] = await timed(() => db.integrityProblems(depth));
      const [check, runsTime] = await timed(() => store.verifyRuns(depth === "full" ? "full" : "tail"));
      const problems = sqlite.length + check.problems.length;
      line.push(`${depth}: SQLite ${sqliteTime}, runs ${runsTime} (${problems} problems)`);
    }
    db.close();
    console.log(line.join("; "));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2).map(Number);
const sizes = args.length >= 2 ? args : [50, 1000, 100, 1000, 10_000, 10];
for (let i = 0; i + 1 < sizes.length; i += 2) await measure(sizes[i] as number, sizes[i + 1] as number);
