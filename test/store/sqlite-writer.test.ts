import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import { StaleRunVersionError } from "../../src/core/run/store.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/store/sqlite/database.js";
import { SqliteRunStateStore } from "../../src/store/sqlite/run-state.js";
import { toolCallChange } from "../support/run-changes.js";
import { logical, RELEASE_GATE, runConfig, specFrom } from "../support/scenarios.js";
import { TimeEvidence } from "../support/time-evidence.js";

const KEY = runConfig();
const cleanup: Array<() => unknown> = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), "dg-writer-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "store.db");
}

function openDb(path: string): SqliteDatabase {
  const db = openSqliteDatabase({ path, journal_mode: "wal", sync_mode: "full", busy_timeout_ms: 5000 });
  cleanup.push(() => db.close());
  return db;
}

/** A second, independent connection to the file (as another process would have). */
function rawConnection(path: string): BetterSqlite.Database {
  const connection = new BetterSqlite(path);
  cleanup.push(() => connection.close());
  return connection;
}

async function startedStore(path: string): Promise<{ db: SqliteDatabase; store: SqliteRunStateStore }> {
  const db = openDb(path);
  const store = new SqliteRunStateStore(db);
  const plane = new ControlPlane(specFrom(RELEASE_GATE), { store, evidence: new TimeEvidence() });
  await plane.start(runConfig(), logical(1), false);
  return { db, store };
}

const versionSeenBy = (connection: BetterSqlite.Database) =>
  (connection.prepare("SELECT version FROM runs WHERE run_id = ?").get(KEY.run_id) as { version: number }).version;

describe("the writer thread", () => {
  it("acknowledges a commit only once it is committed: another connection sees it as the promise settles", async () => {
    const path = tempPath();
    const { store } = await startedStore(path);
    const other = rawConnection(path);
    const seen: number[] = [];
    for (let version = 0; version < 5; version++) {
      await store.commit(KEY, version, toolCallChange(`call-${version}`)).then(() => seen.push(versionSeenBy(other)));
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it("keeps this thread serving while a commit waits for the write lock held by another connection", async () => {
    const path = tempPath();
    const { store } = await startedStore(path);
    const other = rawConnection(path);
    other.prepare("BEGIN IMMEDIATE").run();
    let settled = false;
    const commit = store.commit(KEY, 0, toolCallChange("call-1")).finally(() => {
      settled = true;
    });
    // With the commit on this thread, its busy wait would block the timer until the lock is free.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(settled).toBe(false);
    expect(versionSeenBy(other)).toBe(0);
    other.prepare("COMMIT").run();
    await commit;
    expect(versionSeenBy(other)).toBe(1);
  });

  it("fails a commit on a full disk with the typed error and records nothing; the same commit fits later", async () => {
    const path = tempPath();
    const { db, store } = await startedStore(path);
    await db.writerPragma(`max_page_count = ${db.pragma("page_count")}`);
    const big = toolCallChange("x".repeat(200_000));
    await expect(store.commit(KEY, 0, big)).rejects.toMatchObject({ code: "storage_full" });
    expect(versionSeenBy(rawConnection(path))).toBe(0);
    await db.writerPragma("max_page_count = 1000000");
    await store.commit(KEY, 0, big);
    expect(versionSeenBy(rawConnection(path))).toBe(1);
    expect(await store.ready()).toBe(true);
  });

  it("fails a commit it cannot write, never hangs it, and is not ready until a write succeeds", async () => {
    const path = tempPath();
    await (await startedStore(path)).db.close();
    const db = openDb(path);
    const store = new SqliteRunStateStore(db);
    // The writer thread opens its connection with the first write: the file is gone by then.
    rmSync(path);
    await expect(store.commit(KEY, 0, toolCallChange("call-1"))).rejects.toMatchObject({
      code: "store_error",
      details: { sqlite_code: "SQLITE_CANTOPEN" },
    });
    expect(await store.ready()).toBe(false);
  });

  it("two stores on one file racing on one run: one commit per version, no seq twice", async () => {
    const path = tempPath();
    const { store: a } = await startedStore(path);
    const b = new SqliteRunStateStore(openDb(path));
    for (let version = 0; version < 20; version++) {
      const settled = await Promise.allSettled([
        a.commit(KEY, version, toolCallChange(`a-${version}`)),
        b.commit(KEY, version, toolCallChange(`b-${version}`)),
      ]);
      expect(settled.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
      const lost = settled.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(StaleRunVersionError);
    }
    const state = await b.load(KEY);
    expect(state?.tool_calls).toHaveLength(20);
    const seqs = rawConnection(path)
      .prepare("SELECT seq FROM run_records WHERE kind = 'tool_call' ORDER BY position")
      .all()
      .map((row) => (row as { seq: number }).seq);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it("closing drains the group in flight: its commit is acknowledged and on disk", async () => {
    const path = tempPath();
    const { db, store } = await startedStore(path);
    const commit = store.commit(KEY, 0, toolCallChange("call-1"));
    await new Promise((resolve) => setImmediate(resolve));
    await db.close();
    await expect(commit).resolves.toBeUndefined();
    expect(versionSeenBy(rawConnection(path))).toBe(1);
  });
});
