import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ControlPlane } from "../src/core/run/control-plane.js";
import type { SyncMode } from "../src/store/sqlite/database.js";
import { type BenchResult, measure } from "./measure.js";
import { openPlane, RunDriver } from "./plane.js";

/** Runs whose per-trigger cost is measured at 10 prior triggers; enough that measuring adds few to each. */
const SHORT_RUNS = 1000;
const SHORT_HISTORY = 10;
const LONG_HISTORY = 10_000;
/** Concurrent runs, as with the 32 connections of the HTTP target (README §8). */
const CONCURRENT_RUNS = 32;

/**
 * `scenario_next` decisions per second through the control plane (no transport): `runs` runs each get one
 * trigger per operation, concurrently, so with more than one run the store's group commit comes into play.
 */
async function benchDecisions(dir: string, sync: SyncMode, runs: number): Promise<BenchResult> {
  const { db, plane } = openPlane(join(dir, `decisions-${sync}-${runs}.db`), sync);
  try {
    const drivers = Array.from({ length: runs }, (_, r) => new RunDriver(plane, `run-${r}`));
    for (const driver of drivers) await driver.start();
    const shape = runs === 1 ? "one run" : `${runs} runs concurrently`;
    const name = `sqlite store: scenario_next decisions, ${shape} (WAL, synchronous=${sync.toUpperCase()})`;
    return await measure(name, runs, async () => {
      await Promise.all(drivers.map((driver) => driver.next()));
    });
  } finally {
    await db.close();
  }
}

/** One run of `LONG_HISTORY` triggers and `shortRuns` runs of `SHORT_HISTORY`, through `plane`. */
export async function buildHistories(plane: ControlPlane, shortRuns: number): Promise<void> {
  const long = new RunDriver(plane, "long");
  await long.start();
  for (let i = 0; i < LONG_HISTORY; i++) await long.next();
  for (let r = 0; r < shortRuns; r++) {
    const short = new RunDriver(plane, `short-${r}`);
    await short.start();
    for (let i = 0; i < SHORT_HISTORY; i++) await short.next();
  }
}

/**
 * D10: the per-trigger cost with 10 and with 10,000 prior triggers, on the histories `buildHistories` left in one
 * store (so the database size is the same for both). Short runs are used round-robin, so each stays near 10.
 * Results are named `<store>: trigger with N prior triggers<detail>`.
 */
export async function measureHistoryCost(
  plane: ControlPlane,
  shortRuns: number,
  store: string,
  detail = "",
): Promise<[BenchResult, BenchResult]> {
  const runs = Array.from({ length: shortRuns }, (_, r) => new RunDriver(plane, `short-${r}`).resumeAt(SHORT_HISTORY));
  let turn = 0;
  const atTen = await measure(`${store}: trigger with ${SHORT_HISTORY} prior triggers${detail}`, 1, () => {
    turn = (turn + 1) % shortRuns;
    return (runs[turn] as RunDriver).next();
  });
  const long = new RunDriver(plane, "long").resumeAt(LONG_HISTORY);
  const atTenThousand = await measure(
    `${store}: trigger with ${LONG_HISTORY.toLocaleString("en")} prior triggers${detail}`,
    1,
    () => long.next(),
  );
  atTenThousand.name += ` — mean cost ${costRatio(atTen, atTenThousand).toFixed(2)}× the 10-trigger run`;
  return [atTen, atTenThousand];
}

/** D10 on a SQLite file, its histories built with synchronous=NORMAL (faster; not what is measured). */
async function benchHistoryCost(dir: string): Promise<[BenchResult, BenchResult]> {
  const path = join(dir, "history.db");
  const built = openPlane(path, "normal");
  try {
    await buildHistories(built.plane, SHORT_RUNS);
  } finally {
    await built.db.close();
  }
  const { db, plane } = openPlane(path, "full");
  try {
    return await measureHistoryCost(plane, SHORT_RUNS, "sqlite store", " (WAL, FULL)");
  } finally {
    await db.close();
  }
}

/** How many times more a trigger costs on the long run than on a short one (mean latency; target ≤ 1.5). */
export function costRatio(atTen: BenchResult, atTenThousand: BenchResult): number {
  return atTen.operationsPerSecond / atTenThousand.operationsPerSecond;
}

export async function benchStore(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "dg-bench-store-"));
  try {
    const results: BenchResult[] = [];
    for (const runs of [1, CONCURRENT_RUNS]) {
      for (const sync of ["full", "normal"] as const) results.push(await benchDecisions(dir, sync, runs));
    }
    return [...results, ...(await benchHistoryCost(dir))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
