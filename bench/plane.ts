import { ControlPlane, type ControlPlaneOptions } from "../src/core/run/control-plane.js";
import type { RunKey, RunStateStore } from "../src/core/run/store.js";
import { ScenarioSpec } from "../src/core/spec/schema.js";
import { decode } from "../src/core/wire/common.js";
import { createTimeProvider } from "../src/evidence/builtin/time.js";
import { EvidencePipeline } from "../src/evidence/pipeline.js";
import { parseJson } from "../src/json/parse.js";
import { openSqliteDatabase, type SqliteDatabase, type SyncMode } from "../src/store/sqlite/database.js";
import { SqliteRunStateStore } from "../src/store/sqlite/run-state.js";

/** One stage whose gate is one `time.after` condition that never passes, so every trigger is a recorded hold. */
export const SPEC = decode(
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

/** A run driven by `scenario_next` with fresh trigger ids and increasing logical times. */
export class RunDriver {
  private triggers = 0;
  readonly key: RunKey;

  constructor(
    private readonly plane: ControlPlane,
    runId: string,
  ) {
    this.key = { tenant_id: 1n, namespace_id: 2n, run_id: runId };
  }

  async start(): Promise<void> {
    const config = { ...this.key, scenario_id: this.plane.spec.scenario_id };
    await this.plane.start({ ...config, dispatch_targets: [], policy_tags: [] }, { kind: "logical", value: 0n }, false);
  }

  /** Continues a run that already has `triggers` triggers (after reopening the file). */
  resumeAt(triggers: number): this {
    this.triggers = triggers;
    return this;
  }

  async next(): Promise<void> {
    this.triggers++;
    const { result } = await this.plane.next({
      ...this.key,
      trigger_id: `t-${this.triggers}`,
      agent_id: "bench",
      time: { kind: "logical", value: BigInt(this.triggers) },
      correlation_id: null,
    });
    if (result.decision.outcome.kind !== "hold") throw new Error("the bench gate must hold");
  }
}

/** The control plane of `spec` on `store`, with the time provider. */
export function planeOn(
  store: RunStateStore,
  options: Pick<ControlPlaneOptions, "receipts"> = {},
  spec: ScenarioSpec = SPEC,
): ControlPlane {
  const evidence = new EvidencePipeline({ providers: [createTimeProvider()] });
  return new ControlPlane(spec, { ...options, store, evidence });
}

/** The control plane of `spec` on a SQLite run store at `path` (WAL), with the time provider. */
export function openPlane(
  path: string,
  sync: SyncMode,
  options: Pick<ControlPlaneOptions, "receipts"> = {},
  spec: ScenarioSpec = SPEC,
): { db: SqliteDatabase; store: SqliteRunStateStore; plane: ControlPlane } {
  const db = openSqliteDatabase({ path, journal_mode: "wal", sync_mode: sync, busy_timeout_ms: 5000 });
  const store = new SqliteRunStateStore(db);
  return { db, store, plane: planeOn(store, options, spec) };
}
