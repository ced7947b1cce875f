import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import { emptyAppendedRecords, type RunChange, type RunStateStore } from "../../src/core/run/store.js";
import { toWireError } from "../../src/server/wire-errors.js";
import { MemoryRunStateStore } from "../../src/store/memory/run-state.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/store/sqlite/database.js";
import { STORE_MIGRATIONS } from "../../src/store/sqlite/migrations.js";
import { SqliteRunStateStore } from "../../src/store/sqlite/run-state.js";
import { commitGroup, StatementCache } from "../../src/store/sqlite/writer-group.js";
import { logical, nextRequest, RELEASE_GATE, runConfig, specFrom, tick } from "../support/scenarios.js";
import {
  decisionsFor,
  dropFromTriggerIndex,
  editTriggerColumn,
  forgeAdvance,
  rewriteRecord,
  sqliteCheck,
} from "../support/store-damage.js";
import { TimeEvidence } from "../support/time-evidence.js";

const KEY = runConfig();
const NEVER_PASSES = RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000');
const cleanup: Array<() => void> = [];

afterEach(() => {
  for (const step of cleanup.splice(0).reverse()) step();
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-integrity-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "store.db");
}

function open(path: string, migrations = STORE_MIGRATIONS): { db: SqliteDatabase; store: SqliteRunStateStore } {
  const db = openSqliteDatabase({ path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 }, migrations);
  cleanup.push(() => db.close());
  return { db, store: new SqliteRunStateStore(db) };
}

function planeOn(store: RunStateStore, spec = NEVER_PASSES): ControlPlane {
  return new ControlPlane(specFrom(spec), { store, evidence: new TimeEvidence() });
}

const statusRequest = (at: number) => ({ ...nextRequest("", at), requested_at: logical(at) });

/** A run with the start decision and holds for t-1, t-2, t-3 (decisions 2..4), written and closed. */
async function heldRun(spec = NEVER_PASSES): Promise<string> {
  const path = tempPath();
  const { db, store } = open(path);
  const plane = planeOn(store, spec);
  await plane.start(runConfig(), logical(1), true);
  for (let i = 1; i <= 3; i++) await plane.next(nextRequest(`t-${i}`, i + 1));
  db.close();
  return path;
}

const corrupt = (what: string | RegExp) => ({
  code: "store_corrupt",
  message: typeof what === "string" ? `run state corrupt: 1/2/run-1: ${what}` : expect.stringMatching(what),
});

describe("every read that serves a stored record checks its link in the chain", () => {
  it("a decision rewritten with its own hash recomputed is not replayed", async () => {
    const path = await heldRun();
    const position = forgeAdvance(path, "t-2", "review", "ship");
    const { store } = open(path);
    const plane = planeOn(store);
    await expect(plane.next(nextRequest("t-2", 3))).rejects.toMatchObject(
      corrupt(`record ${position}: chain link broken`),
    );
    await expect(store.load(KEY)).rejects.toMatchObject(corrupt(/chain tip does not match the head|chain link broken/));
    // Positive control: the records around it still replay.
    for (const trigger of ["t-1", "t-3"]) {
      const { result: replay } = await plane.next(nextRequest(trigger, Number(trigger.slice(2)) + 1));
      expect(replay.decision).toMatchObject({ trigger_id: trigger, outcome: { kind: "hold" } });
    }
  });

  it("a packet rewritten consistently is not served with its decision, nor listed by status", async () => {
    const path = tempPath();
    const { db, store } = open(path);
    const plane = planeOn(store, RELEASE_GATE);
    await plane.start(runConfig(), logical(1), true);
    const { result: advanced } = await plane.next(nextRequest("t-1", 6));
    expect(advanced.packets.map((packet) => packet.envelope.packet_id)).toEqual(["ship_notice"]);
    db.close();
    const position = rewriteRecord(path, "packet", "decision_id = 'decision-2'", [], (packet) => ({
      ...packet,
      payload: { kind: "json", value: { ship: false } },
    }));
    const reopened = planeOn(open(path).store, RELEASE_GATE);
    await expect(reopened.next(nextRequest("t-1", 6))).rejects.toMatchObject(
      corrupt(`record ${position}: chain link broken`),
    );
    await expect(reopened.status(statusRequest(7))).rejects.toMatchObject(
      corrupt(`record ${position}: chain link broken`),
    );
  });

  it("the last decision (status, and replays after the end) is checked against the chain too", async () => {
    const path = await heldRun();
    const position = rewriteRecord(path, "decision", "trigger_id = 't-3'", [], (decision) => ({
      ...decision,
      stage_id: "ship",
    }));
    const plane = planeOn(open(path).store);
    await expect(plane.status(statusRequest(9))).rejects.toMatchObject(
      corrupt(`record ${position}: chain link broken`),
    );
  });
});

describe("a trigger-id lookup is trusted only when two independent lookups agree", () => {
  it("an index entry lost (integrity_check: row missing from index): the replay fails closed, nothing is appended", async () => {
    const path = await heldRun();
    dropFromTriggerIndex(path, "decision", "t-2");
    expect(sqliteCheck(path, "integrity_check")).toEqual([expect.stringMatching(/^row \d+ missing from index/)]);
    expect(sqliteCheck(path, "quick_check")).toEqual(["ok"]);
    const plane = planeOn(open(path).store);
    await expect(plane.next(nextRequest("t-2", 3))).rejects.toMatchObject(
      corrupt('trigger "t-2": the lookup index finds no decision, the trigger list decision 3'),
    );
    expect(decisionsFor(path, "t-2")).toBe(1);
    // Positive control: other triggers replay, and a new one is decided with the next seq.
    expect((await plane.next(nextRequest("t-1", 2))).result.decision).toMatchObject({ decision_id: "decision-2" });
    expect((await plane.next(nextRequest("t-4", 5))).result.decision).toMatchObject({ decision_id: "decision-5" });
  });

  it("a trigger_id column edited in place: neither the old nor the new id is taken for a new trigger", async () => {
    const path = await heldRun();
    editTriggerColumn(path, "decision", "t-2", "t-9");
    expect(sqliteCheck(path, "integrity_check")).toEqual(["ok"]);
    const plane = planeOn(open(path).store);
    await expect(plane.next(nextRequest("t-2", 3))).rejects.toMatchObject(
      corrupt('trigger "t-2": the lookup index finds no decision, the trigger list decision 3'),
    );
    await expect(plane.next(nextRequest("t-9", 10))).rejects.toMatchObject(
      corrupt('trigger "t-9": the lookup index finds decision 3, the trigger list no decision'),
    );
    expect([decisionsFor(path, "t-2"), decisionsFor(path, "t-9")]).toEqual([1, 0]);
  });

  it("a trigger record lost from the index: a re-sent trigger is not replayed without its conflict check (D4)", async () => {
    const path = await heldRun();
    dropFromTriggerIndex(path, "trigger", "t-2");
    const plane = planeOn(open(path).store);
    await expect(plane.next(nextRequest("t-2", 99))).rejects.toMatchObject(
      corrupt('trigger "t-2": the lookup index finds no trigger, the trigger list trigger 3'),
    );
  });

  it("a store refuses to record a second decision for a trigger id, whatever the caller read", async () => {
    for (const store of [new MemoryRunStateStore(), open(tempPath()).store]) {
      const plane = planeOn(store);
      await plane.start(runConfig(), logical(1), true);
      await plane.next(nextRequest("t-1", 2));
      const session = await store.open(KEY);
      const decision = await session?.lastDecision();
      if (session === undefined || decision === undefined) throw new Error("run missing");
      const { head } = session;
      const appended = emptyAppendedRecords();
      const event = { ...nextRequest("t-1", 2), kind: "agent_request_next" as const, source_id: "a", payload: null };
      appended.triggers.push({ seq: BigInt(head.counts.triggers + 1), event });
      appended.decisions.push({ ...decision, decision_id: "decision-3", seq: BigInt(head.counts.decisions + 1) });
      const { current_stage_id, stage_entered_at, status } = head;
      const change: RunChange = { current_stage_id, stage_entered_at, status, appended };
      await expect(store.commit(KEY, head.version, change)).rejects.toMatchObject(
        corrupt('refused a second trigger for trigger "t-1"'),
      );
      expect((await store.open(KEY))?.head.version).toBe(head.version);
      expect((await store.load(KEY))?.decisions).toHaveLength(2);
    }
  });
});

describe("verifying a whole store", () => {
  it("full finds damage a call would act on; tail checks each run's head and newest record", async () => {
    const path = await heldRun();
    const { db, store } = open(path);
    await planeOn(store).start(runConfig({ run_id: "run-2" }), logical(1), true);
    expect(await store.verifyRuns("full")).toEqual({ runs: 2, records: 18, problems: [] });
    db.close();
    dropFromTriggerIndex(path, "decision", "t-2");
    const damaged = open(path).store;
    expect(await damaged.verifyRuns("full")).toMatchObject({
      runs: 2,
      problems: [expect.stringMatching(/^run state corrupt: 1\/2\/run-1: record \d+: trigger "t-2" not found through/)],
    });
    expect(await damaged.verifyRuns("tail")).toEqual({ runs: 2, records: 2, problems: [] });
  });

  it("the memory store keeps the same contract", async () => {
    const store = new MemoryRunStateStore();
    const plane = planeOn(store, RELEASE_GATE);
    await plane.start(runConfig(), logical(1), true);
    await plane.next(nextRequest("t-1", 6));
    const progress: number[] = [];
    expect(await store.verifyRuns("full", (checked) => progress.push(checked))).toEqual({
      runs: 1,
      records: 8,
      problems: [],
    });
    expect(progress).toEqual([1]);
  });
});

describe("migrating a store from schema version 2", () => {
  it("lists the trigger ids of existing runs from the records themselves", async () => {
    const path = await heldRun();
    const { db } = open(path);
    db.prepare("DROP TABLE run_trigger_ids").run();
    db.prepare("DELETE FROM schema_migrations WHERE version = 3").run();
    db.close();
    const { store } = open(path);
    expect(await store.verifyRuns("full")).toMatchObject({ runs: 1, problems: [] });
    expect((await planeOn(store).next(nextRequest("t-2", 3))).result.decision).toMatchObject({
      decision_id: "decision-3",
    });
  });
});

describe("opening a store file", () => {
  it("a file SQLite cannot read as a database is refused as damaged, naming it", () => {
    const path = tempPath();
    writeFileSync(path, Buffer.alloc(8192, 0x5a));
    expect(() => open(path)).toThrow(
      expect.objectContaining({
        code: "store_damaged",
        message: expect.stringMatching(`^run state store damaged: ${path}: sqlite: file is not a database\\. `),
      }),
    );
  });
});

describe("a full disk", () => {
  it("fails the commit retryably (-32072, HTTP 503), records nothing, and the same trigger succeeds once there is room", async () => {
    const { db, store } = open(tempPath());
    const plane = planeOn(store);
    await plane.start(runConfig(), logical(1), true);
    const pages = db.pragma("page_count") as number;
    // Writes go through the writer thread's connection, where the limit is set (it is per connection).
    await db.writerPragma(`max_page_count = ${pages}`);
    let failure: unknown;
    let trigger = 0;
    while (failure === undefined && trigger < 500) {
      trigger++;
      failure = await plane.next(nextRequest(`t-${trigger}`, 2)).then(
        () => undefined,
        (error: unknown) => error,
      );
    }
    expect(failure).toMatchObject({ code: "storage_full", message: expect.stringMatching(/full.*retry later/) });
    expect(toWireError(failure)).toMatchObject({ code: -32072, retryable: true, httpStatus: 503 });
    const before = await store.load(KEY);
    expect(before?.decisions.map((decision) => decision.trigger_id)).not.toContain(`t-${trigger}`);
    await db.writerPragma(`max_page_count = ${pages * 100}`);
    const { result: retried } = await plane.next(nextRequest(`t-${trigger}`, 2));
    expect(retried.decision).toMatchObject({
      trigger_id: `t-${trigger}`,
      seq: BigInt((before?.decisions.length ?? 0) + 1),
    });
  });

  it("after SQLite rolled a group back for a full disk, no later write of the group commits on its own", () => {
    const connection = new BetterSqlite(tempPath());
    cleanup.push(() => connection.close());
    connection.prepare("CREATE TABLE t (x)").run();
    connection.pragma(`max_page_count = ${connection.pragma("page_count", { simple: true })}`);
    const insert = (bytes: number) => [{ sql: `INSERT INTO t VALUES (zeroblob(${bytes}))`, params: {} }];
    const outcomes = commitGroup(connection, new StatementCache(connection), [insert(10), insert(100_000), insert(10)]);
    expect(outcomes).toEqual(Array(3).fill({ failed: { code: "SQLITE_FULL", message: expect.any(String) } }));
    expect(connection.prepare("SELECT count(*) AS rows FROM t").get()).toEqual({ rows: 0 });
    connection.pragma("max_page_count = 1000000");
    expect(commitGroup(connection, new StatementCache(connection), [insert(10), insert(10)])).toEqual([
      { committed: true },
      { committed: true },
    ]);
    expect(connection.prepare("SELECT count(*) AS rows FROM t").get()).toEqual({ rows: 2 });
  });

  it("commits grouped with one that finds the disk full are refused together: refused means not recorded", async () => {
    const { db, store } = open(tempPath());
    const plane = planeOn(store);
    const runs = Array.from({ length: 8 }, (_, i) => `run-${i}`);
    for (const run_id of runs) await plane.start(runConfig({ run_id }), logical(1), true);
    await db.writerPragma(`max_page_count = ${db.pragma("page_count")}`);
    // The first commit of the group needs new pages (a 64 KiB payload); the others fit in the pages there are.
    const big = { kind: "json" as const, value: "x".repeat(65_536) };
    const calls = runs.map((run_id, i) =>
      plane.trigger(tick("t-1", logical(2), { run_id, payload: i === 0 ? big : null })),
    );
    const settled = await Promise.allSettled(calls);
    expect(settled[0]).toMatchObject({ status: "rejected", reason: { code: "storage_full" } });
    for (const [i, run_id] of runs.entries()) {
      const recorded = (await store.load({ ...KEY, run_id }))?.decisions.some((d) => d.trigger_id === "t-1");
      expect(recorded, run_id).toBe(settled[i]?.status === "fulfilled");
    }
  });
});
