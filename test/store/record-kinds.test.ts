import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { RunState } from "../../src/core/run/schema.js";
import { emptyAppendedRecords, RECORD_KIND_ORDER, RECORD_KINDS } from "../../src/core/run/store.js";
import { HEAD_COLUMNS } from "../../src/store/run-log/head.js";
import { isOnePerTrigger, LOG_NAMES } from "../../src/store/run-log/records.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/store/sqlite/database.js";

/*
 * The table of record kinds drives the stores, but the SQL of released migrations is written out (it must never
 * change). These tests hold the two, and the run state's own schema, together.
 */

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const step of cleanup.splice(0).reverse()) step();
});

function freshDatabase(): SqliteDatabase {
  const dir = mkdtempSync(join(tmpdir(), "dg-record-kinds-"));
  const db = openSqliteDatabase({
    path: join(dir, "store.db"),
    journal_mode: "wal",
    sync_mode: "full",
    busy_timeout_ms: 5000,
  });
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanup.push(() => db.close());
  return db;
}

/** Whether the statement runs; a CHECK or NOT NULL constraint that refuses it makes it false. */
function accepts(db: SqliteDatabase, sql: string, ...params: unknown[]): boolean {
  try {
    db.prepare(sql).run(...params);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith("SQLITE_CONSTRAINT")) return false;
    throw error;
  }
}

describe("the table of record kinds", () => {
  it("names exactly the logs of a run state, each with the schema the run state uses for it", () => {
    const arrays = Object.entries(RunState.shape).filter(([name, schema]) => {
      return schema instanceof z.ZodArray && name !== "dispatch_targets";
    });
    expect(arrays.map(([name]) => name)).toEqual([...LOG_NAMES]);
    for (const kind of RECORD_KIND_ORDER) {
      const log = RECORD_KINDS[kind].log;
      expect(RunState.shape[log].element, kind).toBe(RECORD_KINDS[kind].schema);
    }
    expect(Object.keys(emptyAppendedRecords())).toEqual([...LOG_NAMES]);
  });

  it("agrees with the tables a new store file is given", () => {
    const db = freshDatabase();
    const runColumns = db
      .prepare<{ name: string; type: string }>("SELECT name, type FROM pragma_table_info('runs')")
      .all();
    for (const column of HEAD_COLUMNS) expect(runColumns.map((row) => row.name)).toContain(column);
    for (const log of LOG_NAMES) expect(runColumns).toContainEqual({ name: log, type: "INTEGER" });

    const anyValues = HEAD_COLUMNS.map(() => "0").join(", ");
    db.prepare(`INSERT INTO runs (run_pk, ${HEAD_COLUMNS.join(", ")}, head_hash) VALUES (1, ${anyValues}, 'x')`).run();
    const record = (kind: string, position: number) =>
      accepts(
        db,
        `INSERT INTO run_records (run_pk, position, kind, seq, record_json, record_sha256, prev_hash)
         VALUES (1, ?, ?, 1, x'7b7d', 'x', 'x')`,
        position,
        kind,
      );
    const listed = (kind: string) =>
      accepts(db, "INSERT INTO run_trigger_ids (run_pk, kind, trigger_id, seq) VALUES (1, ?, 't-1', 1)", kind);

    expect(RECORD_KIND_ORDER.map((kind, index) => record(kind, index + 1))).toEqual(RECORD_KIND_ORDER.map(() => true));
    expect(record("checkpoint", 99)).toBe(false);
    expect(RECORD_KIND_ORDER.map(listed)).toEqual(RECORD_KIND_ORDER.map(isOnePerTrigger));
  });
});
