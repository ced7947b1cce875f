import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createDispatchPolicy } from "../../src/core/dispatch/policy.js";
import { DecisionGateError } from "../../src/core/errors.js";
import { ControlPlane, type ControlPlaneOptions } from "../../src/core/run/control-plane.js";
import type { RunState } from "../../src/core/run/schema.js";
import { type RunStateStore, StaleRunVersionError } from "../../src/core/run/store.js";
import { specHash } from "../../src/core/spec/hash.js";
import { sha256Hex } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";
import { openStores } from "../../src/store/factory.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { MemoryScenarioRegistry } from "../../src/store/memory/scenario-registry.js";
import { MemorySchemaRegistry } from "../../src/store/memory/schema-registry.js";
import { MAX_STATE_BYTES } from "../../src/store/run-log/records.js";
import {
  openSqliteDatabase,
  type SqliteDatabase,
  type SqliteOptions,
  schemaVersion,
} from "../../src/store/sqlite/database.js";
import type { Migration } from "../../src/store/sqlite/migrations.js";
import { SqliteRunStateStore } from "../../src/store/sqlite/run-state.js";
import { SqliteScenarioRegistry } from "../../src/store/sqlite/scenario-registry.js";
import { startBurst } from "../fixtures/store/burst-process.js";
import { toolCallChange } from "../support/run-changes.js";
import { logical, nextRequest, RELEASE_GATE, runConfig, specFrom, tick } from "../support/scenarios.js";
import { TimeEvidence } from "../support/time-evidence.js";

const KEY = runConfig();
const NEVER_PASSES = RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000');
const cleanup: Array<() => void> = [];

afterEach(() => {
  for (const step of cleanup.splice(0).reverse()) step();
});

function tempPath(name = "store.db"): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-sqlite-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "nested", name);
}

function openDb(path: string, overrides: Partial<SqliteOptions> = {}, migrations?: Migration[]): SqliteDatabase {
  const options = { path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000, ...overrides } as const;
  const db = openSqliteDatabase(options, migrations);
  cleanup.push(() => db.close());
  return db;
}

function sqliteStore(path = tempPath()) {
  const db = openDb(path);
  return { db, path, store: new SqliteRunStateStore(db) };
}

function planeOn(store: RunStateStore, spec = RELEASE_GATE, options: Partial<ControlPlaneOptions> = {}) {
  const evidence = new TimeEvidence();
  const plane = new ControlPlane(specFrom(spec), { store, evidence, ...options });
  return { plane, evidence };
}

const canonical = (state: RunState | undefined) => canonicalJson(state as unknown as JsonValue);

/** A call's result, or its error's identity, so two stores' answers can be compared. */
async function settle(call: Promise<unknown>): Promise<unknown> {
  try {
    return await call;
  } catch (error) {
    if (!(error instanceof DecisionGateError)) throw error;
    return { error: error.code, message: error.message };
  }
}

function submitRequest(id: string, payloadJson: string, at = 2) {
  return {
    run_id: "run-1",
    tenant_id: 1n,
    namespace_id: 2n,
    submission_id: id,
    payload: { kind: "json" as const, value: parseJson(payloadJson) },
    content_type: "application/json",
    submitted_at: logical(at),
    correlation_id: null,
  };
}

const statusRequest = (at: number) => ({
  run_id: "run-1",
  tenant_id: 1n,
  namespace_id: 2n,
  requested_at: logical(at),
  correlation_id: null,
});

interface Flow {
  name: string;
  spec?: string;
  options?: Partial<ControlPlaneOptions>;
  setup?: (evidence: TimeEvidence) => void;
  /** The calls of the flow, made one after another. */
  steps: (plane: ControlPlane) => Array<() => Promise<unknown>>;
}

/** The control-plane scenarios (test/core/control-plane.test.ts), replayed on both stores. */
const FLOWS: Flow[] = [
  {
    name: "the worked example: start, hold, replay, advance, complete, replay after the end, status",
    steps: (plane) => [
      () => plane.start(runConfig(), logical(1), true),
      () => plane.next(nextRequest("t-1", 3)),
      () => plane.next(nextRequest("t-1", 3)),
      () => plane.next(nextRequest("t-2", 10)),
      () => plane.next(nextRequest("t-3", 11)),
      () => plane.next(nextRequest("t-4", 12)),
      () => plane.trigger(tick("init", logical(1), { kind: "external_event", source_id: "system" })),
      () => plane.status(statusRequest(20)),
    ],
  },
  {
    name: "submissions, submission conflicts and trigger conflicts (D4)",
    steps: (plane) => [
      () => plane.start(runConfig(), logical(1), false),
      () => plane.submit(submitRequest("s-1", '{"a":1}')),
      () => plane.submit(submitRequest("s-1", '{"a":1}')),
      () => plane.submit(submitRequest("s-1", '{"a":1.0}')),
      () => plane.submit(submitRequest("s-2", '[1,2,{"big":18446744073709551615}]', 3)),
      () => plane.next(nextRequest("t-1", 3)),
      () => plane.next(nextRequest("t-1", 4)),
      () => plane.next(nextRequest("t-1", 3, { correlation_id: "retry" })),
      () => plane.status(statusRequest(5)),
    ],
  },
  {
    name: "a timeout that fails the run, then replays of the last decision",
    steps: (plane) => [
      () => plane.start(runConfig(), logical(1), true),
      () => plane.trigger(tick("tick-1", logical(101))),
      () => plane.next(nextRequest("t-2", 102)),
      () => plane.trigger(tick("tick-2", { kind: "unix_millis", value: 1000n })),
      () => plane.status(statusRequest(103)),
    ],
  },
  {
    name: "a denied packet fails the run",
    options: { dispatchPolicy: createDispatchPolicy({ engine: "deny_all" }) },
    steps: (plane) => [() => plane.start(runConfig(), logical(1), false), () => plane.next(nextRequest("t-1", 10))],
  },
  {
    name: "a provider failure recorded as provider_error",
    setup: (evidence) =>
      evidence.script("time", () => {
        throw new Error("connection refused");
      }),
    steps: (plane) => [() => plane.start(runConfig(), logical(1), true), () => plane.next(nextRequest("t-1", 10))],
  },
  {
    name: "forty holds, status and a replay from the middle",
    spec: NEVER_PASSES,
    steps: (plane) => [
      () => plane.start(runConfig(), logical(1), true),
      ...Array.from({ length: 40 }, (_, i) => () => plane.next(nextRequest(`t-${i}`, 2 + i))),
      () => plane.next(nextRequest("t-7", 9)),
      () => plane.status(statusRequest(100)),
    ],
  },
];

async function runFlow(flow: Flow, store: RunStateStore) {
  const { plane, evidence } = planeOn(store, flow.spec, flow.options);
  flow.setup?.(evidence);
  const outcomes: unknown[] = [];
  for (const call of flow.steps(plane)) outcomes.push(await settle(call()));
  return { outcomes, state: await store.load(KEY) };
}

describe("the RunStateStore contract on SQLite, against the memory store", () => {
  it.each(FLOWS)("$name", async (flow) => {
    const memory = await runFlow(flow, new MemoryRunStateStore());
    const sqlite = await runFlow(flow, sqliteStore().store);
    expect(sqlite.outcomes).toEqual(memory.outcomes);
    expect(sqlite.state).toBeDefined();
    expect(canonical(sqlite.state)).toBe(canonical(memory.state));
  });

  it("start returns the state that load reads back", async () => {
    const { store } = sqliteStore();
    const { state: started } = await planeOn(store).plane.start(runConfig(), logical(1), true);
    expect(canonical(await store.load(KEY))).toBe(canonical(started));
    expect(await store.load({ ...KEY, run_id: "other" })).toBeUndefined();
    expect(await store.open({ ...KEY, tenant_id: 9n })).toBeUndefined();
  });

  it("refuses a second run under the same key", async () => {
    const { store } = sqliteStore();
    const { state: started } = await planeOn(store).plane.start(runConfig(), logical(1), true);
    await expect(store.create(started)).rejects.toMatchObject({
      code: "run_exists",
      message: "run already exists: run-1",
    });
  });

  it("refuses a record over 16 MiB and commits nothing", async () => {
    const { store } = sqliteStore();
    await planeOn(store).plane.start(runConfig(), logical(1), false);
    const huge = toolCallChange("call-1", "x".repeat(MAX_STATE_BYTES));
    await expect(store.commit(KEY, 0, huge)).rejects.toMatchObject({
      code: "record_too_large",
      message: expect.stringMatching(/^run state record exceeds size limit: \d+ bytes \(max 16777216\)$/),
    });
    expect((await store.open(KEY))?.head.version).toBe(0);
  });
});

describe("durability", () => {
  it("a store reopened on the same file finds its runs intact and continues them", async () => {
    const path = tempPath();
    const first = openDb(path);
    const { plane } = planeOn(new SqliteRunStateStore(first), NEVER_PASSES);
    await plane.start(runConfig(), logical(1), false);
    for (let i = 1; i <= 5; i++) await plane.next(nextRequest(`t-${i}`, i + 1));
    const before = canonical(await new SqliteRunStateStore(first).load(KEY));
    first.close();

    const store = new SqliteRunStateStore(openDb(path));
    expect(canonical(await store.load(KEY))).toBe(before);
    const { result } = await planeOn(store, NEVER_PASSES).plane.next(nextRequest("t-6", 7));
    expect(result.decision).toMatchObject({ decision_id: "decision-6", seq: 6n });
    expect((await store.open(KEY))?.head).toMatchObject({ version: 6, counts: { triggers: 6, tool_calls: 6 } });
  });
});

describe("fails closed on corrupted rows", () => {
  async function corruptibleRun() {
    const { db, store } = sqliteStore();
    const { plane } = planeOn(store, NEVER_PASSES);
    await plane.start(runConfig(), logical(1), true);
    for (let i = 1; i <= 3; i++) await plane.next(nextRequest(`t-${i}`, i + 1));
    return { db, store, plane };
  }

  const recordAt = (db: SqliteDatabase, where: string) =>
    db
      .prepare<{ position: number; record_json: Buffer }>(
        `SELECT position, record_json FROM run_records WHERE ${where}`,
      )
      .get();

  function flipByte(db: SqliteDatabase, where: string): number {
    const row = recordAt(db, where);
    if (row === undefined) throw new Error(`no record where ${where}`);
    const bytes = Buffer.from(row.record_json);
    bytes[10] = (bytes[10] ?? 0) ^ 0x01;
    db.prepare("UPDATE run_records SET record_json = ? WHERE position = ?").run(bytes, row.position);
    return row.position;
  }

  const corrupt = (what: RegExp | string) => ({
    kind: "control_plane",
    code: "store_corrupt",
    message: typeof what === "string" ? `run state corrupt: 1/2/run-1: ${what}` : expect.stringMatching(what),
  });

  it("a flipped byte in the newest record: load and the next trigger name the run", async () => {
    const { db, store, plane } = await corruptibleRun();
    const position = flipByte(db, "position = (SELECT max(position) FROM run_records)");
    await expect(store.load(KEY)).rejects.toMatchObject(corrupt(`record ${position} (tool_call 3): hash mismatch`));
    await expect(plane.next(nextRequest("t-4", 5))).rejects.toMatchObject(
      corrupt(`record ${position} (tool_call 3): hash mismatch`),
    );
    await expect(plane.status(statusRequest(6))).rejects.toMatchObject({ code: "store_corrupt" });
  });

  it("a flipped byte in an older decision: load, and a replay that reads it, fail closed", async () => {
    const { db, store, plane } = await corruptibleRun();
    const position = flipByte(db, "kind = 'decision' AND trigger_id = 't-2'");
    await expect(store.load(KEY)).rejects.toMatchObject(corrupt(`record ${position} (decision 3): hash mismatch`));
    await expect(plane.next(nextRequest("t-2", 3))).rejects.toMatchObject(corrupt(/^run state corrupt: 1\/2\/run-1: /));
  });

  it("a truncated record whose hash was recomputed is undecodable", async () => {
    const { db, store, plane } = await corruptibleRun();
    const row = recordAt(db, "kind = 'decision' AND seq = 4");
    const cut = row?.record_json.subarray(0, 40) ?? Buffer.alloc(0);
    db.prepare("UPDATE run_records SET record_json = ?, record_sha256 = ? WHERE position = ?").run(
      cut,
      sha256Hex(cut),
      row?.position,
    );
    await expect(store.load(KEY)).rejects.toMatchObject(
      corrupt(/: record \d+ \(decision 4\): undecodable: invalid JSON/),
    );
    await expect(plane.status(statusRequest(6))).rejects.toMatchObject(corrupt(/\(decision 4\): undecodable/));
  });

  it("a record that decodes but breaks its schema is undecodable", async () => {
    const { db, store } = await corruptibleRun();
    const row = recordAt(db, "kind = 'trigger' AND seq = 2");
    const bytes = Buffer.from((row?.record_json.toString("utf8") ?? "").replace('"seq":2', '"seq":"2"'));
    db.prepare("UPDATE run_records SET record_json = ?, record_sha256 = ? WHERE position = ?").run(
      bytes,
      sha256Hex(bytes),
      row?.position,
    );
    await expect(store.load(KEY)).rejects.toMatchObject(
      corrupt(/\(trigger 2\): undecodable: invalid record: record\.seq/),
    );
  });

  it("a deleted newest record is a truncated log for the next trigger and for load", async () => {
    const { db, store, plane } = await corruptibleRun();
    db.prepare("DELETE FROM run_records WHERE position = (SELECT max(position) FROM run_records)").run();
    await expect(plane.next(nextRequest("t-4", 5))).rejects.toMatchObject(
      corrupt(/: log truncated: record \d+ missing$/),
    );
    await expect(store.load(KEY)).rejects.toMatchObject(corrupt(/log truncated/));
  });

  it("a deleted or re-linked record in the middle breaks the chain", async () => {
    const { db, store } = await corruptibleRun();
    db.prepare("UPDATE run_records SET prev_hash = ? WHERE position = 4").run("0".repeat(64));
    await expect(store.load(KEY)).rejects.toMatchObject(corrupt("record 4: chain link broken"));
    db.prepare("DELETE FROM run_records WHERE position = 4").run();
    await expect(store.load(KEY)).rejects.toMatchObject(corrupt("log truncated: record 4 missing"));
  });

  it("an edited head or index column is detected", async () => {
    const { db, store, plane } = await corruptibleRun();
    db.prepare("UPDATE run_records SET trigger_id = 't-9' WHERE kind = 'decision' AND trigger_id = 't-1'").run();
    await expect(store.load(KEY)).rejects.toMatchObject(
      corrupt(/\(decision 2\): index columns do not match the record$/),
    );
    db.prepare("UPDATE runs SET status = 'completed'").run();
    await expect(plane.next(nextRequest("t-5", 6))).rejects.toMatchObject(corrupt("head hash mismatch"));
    await expect(store.load(KEY)).rejects.toMatchObject(corrupt("head hash mismatch"));
  });
});

describe("concurrent writers on one file", () => {
  it("two connections commit against the same version: one wins, the other is stale", async () => {
    const { path, store: a } = sqliteStore();
    const b = new SqliteRunStateStore(openDb(path));
    await planeOn(a).plane.start(runConfig(), logical(1), false);
    const [viewA, viewB] = [await a.open(KEY), await b.open(KEY)];
    await a.commit(KEY, viewA?.head.version ?? -1, toolCallChange("call-1"));
    const attempt = b.commit(KEY, viewB?.head.version ?? -1, toolCallChange("call-1"));
    await expect(attempt).rejects.toBeInstanceOf(StaleRunVersionError);
    const state = await b.load(KEY);
    expect(state?.tool_calls.map((call) => call.call_id)).toEqual(["call-1"]);
    expect((await b.open(KEY))?.head.version).toBe(1);
  });

  it("control planes on three connections race; retries give every trigger its own seq and none fails", async () => {
    const { path, store: first } = sqliteStore();
    const stores = [first, new SqliteRunStateStore(openDb(path)), new SqliteRunStateStore(openDb(path))];
    let stale = 0;
    for (const store of stores) {
      const commit = store.commit.bind(store);
      store.commit = async (...args) => {
        try {
          return await commit(...args);
        } catch (error) {
          if (error instanceof StaleRunVersionError) stale++;
          throw error;
        }
      };
    }
    const planes = stores.map((store) => planeOn(store, NEVER_PASSES).plane);
    await planes[0]?.start(runConfig(), logical(1), false);
    const calls = Array.from({ length: 90 }, (_, i) => planes[i % 3]?.next(nextRequest(`t-${i}`, 2 + i)));
    const results = await Promise.all(calls);
    expect(stale).toBeGreaterThan(0);
    expect(new Set(results.map((outcome) => outcome?.result.decision.seq)).size).toBe(90);
    const state = await first.load(KEY);
    expect(state?.triggers.map((trigger) => trigger.seq)).toEqual(Array.from({ length: 90 }, (_, i) => BigInt(i + 1)));
    expect(new Set(state?.decisions.map((decision) => decision.trigger_id)).size).toBe(90);
  });

  it("commits queued together share a transaction, and a stale one is rolled back alone", async () => {
    const { store } = sqliteStore();
    const { plane } = planeOn(store);
    await plane.start(runConfig(), logical(1), false);
    await plane.start(runConfig({ run_id: "run-2" }), logical(1), false);
    const outcomes = await Promise.allSettled([
      store.commit(KEY, 0, toolCallChange("call-1")),
      store.commit({ ...KEY, run_id: "run-2" }, 7, toolCallChange("call-1")),
      store.commit({ ...KEY, run_id: "missing" }, 0, toolCallChange("call-1")),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "rejected", "rejected"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(StaleRunVersionError);
    expect((await store.open(KEY))?.head.version).toBe(1);
    expect((await store.load({ ...KEY, run_id: "run-2" }))?.tool_calls).toEqual([]);
  });

  it("a commit still queued when the database closes is rejected, never acknowledged", async () => {
    const { db, path, store } = sqliteStore();
    await planeOn(store).plane.start(runConfig(), logical(1), false);
    const pending = store.commit(KEY, 0, toolCallChange("call-1"));
    db.close();
    await expect(pending).rejects.toMatchObject({ code: "store_error" });
    expect((await new SqliteRunStateStore(openDb(path)).open(KEY))?.head.version).toBe(0);
  });

  it("two processes drive one run concurrently: seqs 1..2N, no duplicates, every ack recorded", async () => {
    const path = tempPath();
    const perProcess = 60;
    const bursts = [startBurst(path, "a", perProcess), startBurst(path, "b", perProcess)];
    await Promise.all(bursts.map((burst) => burst.ready));
    for (const burst of bursts) burst.go();
    const exits = await Promise.all(bursts.map((burst) => burst.exited));
    expect(exits.map((exit) => [exit.code, exit.stderr])).toEqual([
      [0, ""],
      [0, ""],
    ]);

    const state = await new SqliteRunStateStore(openDb(path)).load(KEY);
    const total = 2 * perProcess;
    expect(state?.triggers.map((trigger) => trigger.seq)).toEqual(
      Array.from({ length: total }, (_, i) => BigInt(i + 1)),
    );
    expect(state?.decisions.map((decision) => decision.decision_id)).toEqual(
      Array.from({ length: total }, (_, i) => `decision-${i + 1}`),
    );
    expect(new Set(state?.decisions.map((decision) => decision.trigger_id)).size).toBe(total);
    const recorded = new Map(state?.decisions.map((decision) => [decision.decision_id, decision.trigger_id]));
    for (const ack of bursts.flatMap((burst) => burst.acks)) expect(recorded.get(ack.decisionId)).toBe(ack.triggerId);
    expect(bursts.map((burst) => burst.acks.length)).toEqual([perProcess, perProcess]);
    console.log(
      "CONFLICTS",
      bursts.map((burst) => burst.staleCommits),
    );
  });
});

describe("the database file", () => {
  const tables = (db: SqliteDatabase) =>
    db
      .prepare<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((row) => row.name);

  it("an empty file is migrated to the latest schema", () => {
    const path = tempPath();
    openDb(path).close();
    rmSync(path);
    writeFileSync(path, "");
    const db = openDb(path);
    expect(schemaVersion(db)).toBe(3);
    expect(tables(db)).toEqual([
      "action_receipts",
      "data_shapes",
      "run_records",
      "run_trigger_ids",
      "runs",
      "scenarios",
      "schema_migrations",
      "write_probe",
    ]);
  });

  it("applies only newer migrations, each atomically", () => {
    const path = tempPath();
    const step = (version: number, ...steps: string[]): Migration => ({ version, name: `m${version}`, steps });
    const m1 = step(1, "CREATE TABLE one (x)");
    const m2 = step(2, "CREATE TABLE two (x)");
    const broken = step(3, "CREATE TABLE three (x)", "INSERT INTO nowhere VALUES (1)");
    openDb(path, {}, [m1]).close();
    const db = openDb(path, {}, [m1, m2]);
    const applied = [2, ["one", "schema_migrations", "two", "write_probe"]];
    expect([schemaVersion(db), tables(db)]).toEqual(applied);
    expect(() => openDb(path, {}, [m1, m2, broken])).toThrow(/no such table: nowhere/);
    expect([schemaVersion(db), tables(db)]).toEqual(applied);
  });

  it("a file from a newer schema version is refused", () => {
    const path = tempPath();
    const db = openDb(path);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (7, 'future', 0)").run();
    db.close();
    expect(() => openDb(path)).toThrow(
      expect.objectContaining({
        code: "store_version_mismatch",
        message: expect.stringMatching(
          /^run state store version mismatch: unsupported schema version: 7 \(this build supports up to 3; .*store\.db was written by a newer Decision Gate\)$/,
        ),
      }),
    );
  });

  it("reports readiness, and a closed store is neither ready nor usable", async () => {
    const { db, store } = sqliteStore();
    expect(await store.ready()).toBe(true);
    db.close();
    expect(await store.ready()).toBe(false);
    await expect(store.load(KEY)).rejects.toMatchObject({
      code: "store_error",
      message: expect.stringMatching(/^run state store error: /),
    });
  });

  it.each([
    [{ journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 }, ["wal", 2, 5000, 1]],
    [{ journal_mode: "delete", sync_mode: "normal", busy_timeout_ms: 1234n }, ["delete", 1, 1234, 1]],
  ] as const)("applies journal and sync modes %o", (options, expected) => {
    const db = openDb(tempPath(), options);
    expect(["journal_mode", "synchronous", "busy_timeout", "foreign_keys"].map((name) => db.pragma(name))).toEqual(
      expected,
    );
  });

  it("refuses a directory, a path it cannot create, and unknown modes", () => {
    const path = tempPath();
    openDb(path).close();
    expect(() => openDb(join(path, ".."))).toThrow(/^sqlite store path is a directory: /);
    expect(() => openDb(join(path, "inside-a-file.db"))).toThrow(
      expect.objectContaining({
        code: "store_error",
        message: expect.stringMatching(/^run state store error: cannot open /),
      }),
    );
    expect(() => openDb(path, { journal_mode: "wal; DROP TABLE runs" as never })).toThrow(
      "unsupported journal_mode: wal; DROP TABLE runs",
    );
    expect(() => openDb(path, { sync_mode: "off" as never })).toThrow("unsupported sync_mode: off");
    expect(() => openDb(path, { busy_timeout_ms: -1 })).toThrow("invalid busy_timeout_ms: -1");
  });
});

describe("openStores", () => {
  const sqliteSection = (path: string) =>
    ({ type: "sqlite", path, busy_timeout_ms: 5000n, journal_mode: "wal", sync_mode: "full" }) as const;

  it("builds memory stores for memory sections", async () => {
    const stores = await openStores({
      run_state_store: { type: "memory", busy_timeout_ms: 5000, journal_mode: "wal", sync_mode: "full" },
      schema_registry: {
        type: "memory",
        busy_timeout_ms: 5000,
        journal_mode: "wal",
        sync_mode: "full",
        max_schema_bytes: 1024,
      },
    });
    expect(stores.runs).toBeInstanceOf(MemoryRunStateStore);
    expect(stores.scenarios).toBeInstanceOf(MemoryScenarioRegistry);
    expect(stores.schemas).toBeInstanceOf(MemorySchemaRegistry);
    await stores.close();
  });

  it("shares one connection for one file, keeps scenarios there, accepts bigint settings and max_versions", async () => {
    const path = tempPath();
    const config = {
      run_state_store: { ...sqliteSection(path), max_versions: 3n },
      schema_registry: { ...sqliteSection(path), max_schema_bytes: 1_048_576n, max_entries: 1n },
    };
    const stores = await openStores(config);
    expect(stores.scenarios).toBeInstanceOf(SqliteScenarioRegistry);
    const spec = specFrom(RELEASE_GATE);
    await stores.scenarios.define(spec, specHash(spec));
    await planeOn(stores.runs).plane.start(runConfig(), logical(1), true);
    const record = { tenant_id: 1n, namespace_id: 2n, schema_id: "s", version: "1", schema: true, description: null };
    await stores.schemas.register({ ...record, created_at: logical(1) });
    await expect(stores.schemas.register({ ...record, version: "2", created_at: logical(1) })).rejects.toThrow(
      "schema registry entry limit exceeded: 1 entries (max 1)",
    );
    await stores.close();
    expect([await stores.runs.ready(), await stores.scenarios.ready(), await stores.schemas.ready()]).toEqual([
      false,
      false,
      false,
    ]);

    const reopened = await openStores(config);
    cleanup.push(() => void reopened.close());
    expect((await reopened.scenarios.get(1n, 2n, "release-gate"))?.spec_hash).toEqual(specHash(spec));
    expect(await reopened.schemas.count(1n, 2n)).toBe(1);
    expect((await reopened.runs.load(KEY))?.decisions).toHaveLength(1);
  });

  it("uses separate files when configured so", async () => {
    const stores = await openStores({
      run_state_store: sqliteSection(tempPath("runs.db")),
      schema_registry: { ...sqliteSection(tempPath("registry.db")), max_schema_bytes: 1024 },
    });
    cleanup.push(() => void stores.close());
    expect(await stores.schemas.ready()).toBe(true);
    expect(await stores.runs.ready()).toBe(true);
  });

  it("refuses a missing path, clashing settings on a shared file, and an oversized sqlite schema limit", async () => {
    const path = tempPath();
    const memory = { type: "memory", max_schema_bytes: 1024 } as const;
    await expect(openStores({ run_state_store: { type: "sqlite" }, schema_registry: memory })).rejects.toThrow(
      "sqlite run_state_store requires path",
    );
    await expect(
      openStores({ run_state_store: { type: "memory" }, schema_registry: { ...memory, type: "sqlite" } }),
    ).rejects.toThrow("sqlite schema_registry requires path");
    await expect(
      openStores({
        run_state_store: sqliteSection(path),
        schema_registry: { ...sqliteSection(path), sync_mode: "normal", max_schema_bytes: 1024 },
      }),
    ).rejects.toThrow(/share .*store\.db but set different sync_mode: full and normal/);
    await expect(
      openStores({
        run_state_store: { type: "memory" },
        schema_registry: { ...sqliteSection(path), max_schema_bytes: 2 * 1_048_576 },
      }),
    ).rejects.toThrow("schema_registry_max_schema_bytes out of range: 2097152 (max 1048576)");
  });
});
