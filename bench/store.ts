import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane } from "../src/core/run/control-plane.js";
import { ScenarioSpec } from "../src/core/spec/schema.js";
import { decode } from "../src/core/wire/common.js";
import { createTimeProvider } from "../src/evidence/builtin/time.js";
import { EvidencePipeline } from "../src/evidence/pipeline.js";
import { parseJson } from "../src/json/parse.js";
import { openSqliteDatabase, type SqliteDatabase, type SyncMode } from "../src/store/sqlite/database.js";
import { SqliteRunStateStore } from "../src/store/sqlite/run-state.js";
import { type BenchResult, measure } from "./measure.js";

/** One stage whose gate is one `time.after` condition that never passes, so every trigger is a recorded hold. */
const SPEC = decode(
  ScenarioSpec,
  parseJson(`{
    "scenario_id": "bench", "namespace_id": 2, "spec_version": "1", "default_tenant_id": null,
    "policies": [], "schemas": [],
    "conditions": [{"condition_id": "after", "query": {"provider_id": "time", "check_id": "after",
      "params": {"timestamp": 1000000000}}, "comparator": "equals", "expected": true, "policy_tags": []}],
    "stages": [{"stage_id": "wait", "entry_packets": [], "advance_to": {"kind": "terminal"},
      "gates": [{"gate_id": "g", "requirement": {"Condition": "after"}}], "timeout": null, "on_timeout": "fail"}]
  }`),
  "spec",
);

/** Runs whose per-trigger cost is measured at 10 prior triggers; enough that measuring adds few to each. */
const SHORT_RUNS = 1000;
const SHORT_HISTORY = 10;
const LONG_HISTORY = 10_000;
/** Concurrent runs, as with the 32 connections of the HTTP target (README §8). */
const CONCURRENT_RUNS = 32;

/** A run driven by `scenario_next` with fresh trigger ids and increasing logical times. */
class RunDriver {
  private triggers = 0;

  constructor(
    private readonly plane: ControlPlane,
    private readonly runId: string,
  ) {}

  async start(): Promise<void> {
    const config = { tenant_id: 1n, namespace_id: 2n, run_id: this.runId, scenario_id: "bench" };
    await this.plane.start({ ...config, dispatch_targets: [], policy_tags: [] }, { kind: "logical", value: 0n }, false);
  }

  /** Continues a run that already has `triggers` triggers (after reopening the file). */
  resumeAt(triggers: number): this {
    this.triggers = triggers;
    return this;
  }

  async next(): Promise<void> {
    this.triggers++;
    const result = await this.plane.next({
      run_id: this.runId,
      tenant_id: 1n,
      namespace_id: 2n,
      trigger_id: `t-${this.triggers}`,
      agent_id: "bench",
      time: { kind: "logical", value: BigInt(this.triggers) },
      correlation_id: null,
    });
    if (result.decision.outcome.kind !== "hold") throw new Error("the bench gate must hold");
  }
}

function openPlane(path: string, sync: SyncMode): { db: SqliteDatabase; plane: ControlPlane } {
  const db = openSqliteDatabase({ path, journal_mode: "wal", sync_mode: sync, busy_timeout_ms: 5000 });
  const evidence = new EvidencePipeline({ providers: [createTimeProvider()] });
  return { db, plane: new ControlPlane(SPEC, { store: new SqliteRunStateStore(db), evidence }) };
}

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
    db.close();
  }
}

/** Builds the histories with synchronous=NORMAL (faster; durability is not what is measured here). */
async function buildHistories(path: string): Promise<void> {
  const { db, plane } = openPlane(path, "normal");
  try {
    const long = new RunDriver(plane, "long");
    await long.start();
    for (let i = 0; i < LONG_HISTORY; i++) await long.next();
    for (let r = 0; r < SHORT_RUNS; r++) {
      const short = new RunDriver(plane, `short-${r}`);
      await short.start();
      for (let i = 0; i < SHORT_HISTORY; i++) await short.next();
    }
  } finally {
    db.close();
  }
}

/**
 * D10: the per-trigger cost with 10 and with 10,000 prior triggers, measured in one file holding both (so the
 * database size is the same) with synchronous=FULL. Short runs are used round-robin, so each stays near 10.
 */
async function benchHistoryCost(dir: string): Promise<[BenchResult, BenchResult]> {
  const path = join(dir, "history.db");
  await buildHistories(path);
  const { db, plane } = openPlane(path, "full");
  try {
    const shortRuns = Array.from({ length: SHORT_RUNS }, (_, r) =>
      new RunDriver(plane, `short-${r}`).resumeAt(SHORT_HISTORY),
    );
    let turn = 0;
    const atTen = await measure(`sqlite store: trigger with ${SHORT_HISTORY} prior triggers (WAL, FULL)`, 1, () => {
      turn = (turn + 1) % SHORT_RUNS;
      return (shortRuns[turn] as RunDriver).next();
    });
    const long = new RunDriver(plane, "long").resumeAt(LONG_HISTORY);
    const atTenThousand = await measure(
      `sqlite store: trigger with ${LONG_HISTORY.toLocaleString("en")} prior triggers (WAL, FULL)`,
      1,
      () => long.next(),
    );
    atTenThousand.name += ` — mean cost ${costRatio(atTen, atTenThousand).toFixed(2)}× the 10-trigger run`;
    return [atTen, atTenThousand];
  } finally {
    db.close();
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
