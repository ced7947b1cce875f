import BetterSqlite from "better-sqlite3";
import { sha256Hex } from "../../src/json/hash.js";
import { parseJson } from "../../src/json/parse.js";
import type { JsonObject, JsonValue } from "../../src/json/value.js";
import { canonicalJson } from "../../src/json/write.js";

/*
 * Damage done to a SQLite store file the way disk faults and hand edits do it, with the file closed by everyone
 * else. Each helper opens its own connection and closes it again.
 */

function withFile<T>(path: string, work: (db: BetterSqlite.Database) => T): T {
  const db = new BetterSqlite(path);
  try {
    return work(db);
  } finally {
    db.close();
  }
}

interface RecordRow {
  run_pk: number;
  position: number;
  record_json: Buffer;
}

function recordOf(db: BetterSqlite.Database, kind: string, where: string, ...params: unknown[]): RecordRow {
  const row = db
    .prepare(`SELECT run_pk, position, record_json FROM run_records WHERE kind = ? AND ${where}`)
    .get(kind, ...params) as RecordRow | undefined;
  if (row === undefined) throw new Error(`no ${kind} record where ${where}`);
  return row;
}

/**
 * Rewrites one stored record consistently: new canonical bytes and their sha256, as a careful forger (or a tool
 * "repairing" the file) would; returns the record's position. The chain is not touched.
 */
export function rewriteRecord(
  path: string,
  kind: string,
  where: string,
  params: unknown[],
  edit: (record: JsonObject) => JsonObject,
): number {
  return withFile(path, (db) => {
    const row = recordOf(db, kind, where, ...params);
    const record = edit(parseJson(row.record_json.toString("utf8")) as JsonObject);
    const bytes = Buffer.from(canonicalJson(record as JsonValue), "utf8");
    db.prepare("UPDATE run_records SET record_json = ?, record_sha256 = ? WHERE run_pk = ? AND position = ?").run(
      bytes,
      sha256Hex(bytes),
      row.run_pk,
      row.position,
    );
    return row.position;
  });
}

/** The decision of `triggerId` turned into an `advance` to `toStage`, with its hash recomputed. */
export function forgeAdvance(path: string, triggerId: string, fromStage: string, toStage: string): number {
  return rewriteRecord(path, "decision", "trigger_id = ?", [triggerId], (decision) => ({
    ...decision,
    outcome: { kind: "advance", from_stage: fromStage, to_stage: toStage, timeout: false },
  }));
}

/** A stored record's `trigger_id` column changed with an ordinary UPDATE (the index follows it). */
export function editTriggerColumn(path: string, kind: string, triggerId: string, to: string): void {
  withFile(path, (db) => {
    db.prepare("UPDATE run_records SET trigger_id = ? WHERE kind = ? AND trigger_id = ?").run(to, kind, triggerId);
  });
}

const TRIGGER_INDEX = "run_records_by_trigger";

/**
 * Makes the trigger-id index lose the entry of one record while the table keeps the row, the damage
 * `integrity_check` reports as "row N missing from index run_records_by_trigger" (and `quick_check` misses): the
 * index is rebuilt under a definition that leaves the record out, then given back its real definition.
 * Returns the record's position.
 */
export function dropFromTriggerIndex(path: string, kind: string, triggerId: string): number {
  const { run_pk, position } = withFile(path, (db) => recordOf(db, kind, "trigger_id = ?", triggerId));
  const original = withFile(path, (db) =>
    db.prepare("SELECT sql FROM sqlite_master WHERE name = ?").pluck().get(TRIGGER_INDEX),
  ) as string;
  const narrowed = original.replace(
    "WHERE trigger_id IS NOT NULL",
    `WHERE trigger_id IS NOT NULL AND NOT (run_pk = ${run_pk} AND position = ${position})`,
  );
  if (narrowed === original) throw new Error(`unexpected definition of ${TRIGGER_INDEX}: ${original}`);
  withSchemaEdits(path, (db) => setIndexDefinition(db, narrowed));
  withSchemaEdits(path, (db) => {
    db.exec(`REINDEX ${TRIGGER_INDEX}`);
    setIndexDefinition(db, original);
  });
  return position;
}

function withSchemaEdits(path: string, work: (db: BetterSqlite.Database) => void): void {
  withFile(path, (db) => {
    db.unsafeMode(true);
    work(db);
  });
}

function setIndexDefinition(db: BetterSqlite.Database, sql: string): void {
  db.pragma("writable_schema = ON");
  db.prepare("UPDATE sqlite_master SET sql = ? WHERE name = ?").run(sql, TRIGGER_INDEX);
  const version = db.pragma("schema_version", { simple: true }) as number;
  db.pragma(`schema_version = ${version + 1}`);
  db.pragma("writable_schema = OFF");
}

/** SQLite's own verdict on the file: `integrity_check` or `quick_check` lines (`["ok"]` when healthy). */
export function sqliteCheck(path: string, pragma: "integrity_check" | "quick_check"): string[] {
  return withFile(path, (db) =>
    (db.pragma(pragma) as Array<Record<string, string>>).map((row) => Object.values(row)[0] ?? ""),
  );
}

/** How many decisions the file holds for a trigger id, by the records themselves (no index). */
export function decisionsFor(path: string, triggerId: string): number {
  return withFile(path, (db) => {
    const rows = db.prepare("SELECT record_json FROM run_records NOT INDEXED WHERE kind = 'decision'").all() as Array<{
      record_json: Buffer;
    }>;
    return rows.filter((row) => (parseJson(row.record_json.toString("utf8")) as JsonObject).trigger_id === triggerId)
      .length;
  });
}
