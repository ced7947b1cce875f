import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CAPABILITIES } from "../../src/actions/capabilities.js";
import { DEFAULT_MAPPING, receiptIssuer } from "../../src/actions/receipts.js";
import { ControlPlane } from "../../src/core/run/control-plane.js";
import { openPostgresDatabase, type PostgresDatabase } from "../../src/store/postgres/database.js";
import { PostgresRunStateStore } from "../../src/store/postgres/run-state.js";
import { READ_SQL } from "../../src/store/postgres/run-state-sql.js";
import { type PostgresCluster, skipWithoutPostgres, startPostgres } from "../support/postgres.js";
import { nextRequest, RELEASE_GATE, runConfig, specFrom } from "../support/scenarios.js";
import { TimeEvidence } from "../support/time-evidence.js";

/*
 * D10 on PostgreSQL does not rest on table statistics: each read a call makes reaches its rows through an index,
 * whatever the planner knows. A long run is read through the generic plans prepared statements settle on, first in
 * tables never analyzed (autovacuum off: the worst case, a new database), then after ANALYZE; each plan must touch
 * a bounded number of rows however long the run is.
 */

const skip = skipWithoutPostgres("query plans of the PostgreSQL run store");
/** A gate that never passes and a stage that never times out: every call is one more recorded hold. */
const HOLDS = RELEASE_GATE.replace('"timestamp": 5', '"timestamp": 1000000').replace(
  '"timeout": {"timeout_ms": 100, "policy_tags": []}',
  '"timeout": null',
);
const CALLS = 150;
const KEY = runConfig();

let cluster: PostgresCluster | undefined;
let db: PostgresDatabase | undefined;
let url = "";

beforeAll(async () => {
  if (skip) return;
  cluster = await startPostgres();
  url = await cluster.createDatabase();
  const name = new URL(url).pathname.slice(1);
  db = await openPostgresDatabase({ url });
  for (const table of ["runs", "run_records", "run_trigger_ids", "action_receipts"]) {
    await cluster.sql(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`, [], name);
  }
  const plane = planeOn(new PostgresRunStateStore(db));
  await plane.start(runConfig({ run_id: "short" }), { kind: "logical", value: 1n }, true);
  await plane.next(nextRequest("s-1", 2, { run_id: "short" }));
  await plane.start(KEY, { kind: "logical", value: 1n }, true);
  for (let call = 1; call <= CALLS; call++) await plane.next(nextRequest(`t-${call}`, call + 1));
}, 120_000);

function planeOn(store: PostgresRunStateStore): ControlPlane {
  return new ControlPlane(specFrom(HOLDS), {
    store,
    evidence: new TimeEvidence(),
    receipts: receiptIssuer({ mapping: DEFAULT_MAPPING, capabilities: DEFAULT_CAPABILITIES }),
  });
}

afterAll(async () => {
  await db?.close();
  await cluster?.destroy();
});

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Join Filter"?: number;
  Plans?: PlanNode[];
}

/**
 * The tables that grow with a run. `runs` grows with the number of runs, two here, so a planner with statistics may
 * rightly scan it.
 */
const RUN_TABLES = ["run_records", "run_trigger_ids", "action_receipts"];

/** Rows each scan of a run table produced or threw away, summed over its loops. */
function rowsTouched(node: PlanNode, into: Map<string, number> = new Map()): Map<string, number> {
  const relation = node["Relation Name"];
  if (relation !== undefined && RUN_TABLES.includes(relation)) {
    const removed = (node["Rows Removed by Filter"] ?? 0) + (node["Rows Removed by Join Filter"] ?? 0);
    const touched = (node["Actual Rows"] + removed) * node["Actual Loops"];
    into.set(relation, (into.get(relation) ?? 0) + touched);
  }
  for (const child of node.Plans ?? []) rowsTouched(child, into);
  return into;
}

/**
 * The generic plan of `text` (as a prepared statement settles on) run with `values`, in a transaction rolled back
 * afterwards: rows touched per table.
 */
async function touched(text: string, values: readonly unknown[]): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query("SET LOCAL plan_cache_mode = force_generic_plan");
    await client.query(`PREPARE measured AS ${text}`);
    const literal = (value: unknown) => (value === null ? "NULL" : client.escapeLiteral(textOf(value)));
    const [row] = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE measured(${values.map(literal)})`)).rows;
    return rowsTouched(row["QUERY PLAN"][0].Plan as PlanNode);
  } finally {
    await client.query("ROLLBACK");
    await client.end();
  }
}

/** A parameter's text form, as the client sends it: bytea as hex, arrays as array literals. */
function textOf(value: unknown): string {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `\\x${Buffer.from(value).toString("hex")}`;
  if (!Array.isArray(value)) return String(value);
  const element = (item: unknown) =>
    item === null ? "NULL" : `"${textOf(item).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return `{${value.map(element).join(",")}}`;
}

/** The statement that would append one more decision to the long run, taken before it is sent (nothing is written). */
async function nextWrite(): Promise<{ text: string; params: readonly unknown[] }> {
  const database = db as PostgresDatabase;
  let write: { text: string; params: readonly unknown[] } | undefined;
  const capturing = new Proxy(database, {
    get(target, name) {
      if (name !== "query") {
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (label: string, text: string, params: readonly unknown[]) => {
        if (!text.startsWith("WITH head AS (UPDATE")) return target.query(label, text, params);
        write = { text, params };
        throw new Error("not sent");
      };
    },
  });
  const plane = planeOn(new PostgresRunStateStore(capturing));
  await expect(plane.next(nextRequest("t-unsent", CALLS + 2))).rejects.toThrow("not sent");
  if (write === undefined) throw new Error("no write was planned");
  return write;
}

const ref = () => [String(KEY.tenant_id), String(KEY.namespace_id), KEY.run_id];

describe.skipIf(skip)("the long run", () => {
  it("builds a run long enough to tell a scan from a lookup", async () => {
    const [row] = await (db as PostgresDatabase).query<{ records: number }>(
      "test",
      "SELECT count(*)::integer AS records FROM run_records WHERE run_id = $1",
      [KEY.run_id],
    );
    expect(row?.records).toBeGreaterThan(3 * CALLS);
    const [receipts] = await (db as PostgresDatabase).query<{ count: number }>(
      "test",
      "SELECT count(*)::integer AS count FROM action_receipts WHERE run_id = $1",
      [KEY.run_id],
    );
    expect(receipts?.count).toBe(CALLS + 1);
  });
});

// Suites run in order: first on tables never analyzed, then once ANALYZE has given the planner statistics.
describe.skipIf(skip).each(["without table statistics", "after ANALYZE"])("PostgreSQL run store reads %s", (when) => {
  beforeAll(async () => {
    if (when === "after ANALYZE") await (cluster as PostgresCluster).sql("ANALYZE", [], new URL(url).pathname.slice(1));
  });

  it.each([
    ["the head with its tail, last receipt and trigger lookups (a new trigger id)", READ_SQL.head, ["t-new"]],
    ["the head with its tail, last receipt and trigger lookups (a recorded trigger id)", READ_SQL.head, ["t-7"]],
    ["the head alone", READ_SQL.head, [null]],
    ["a record by position", READ_SQL.atPosition, [300]],
    ["a record's link", READ_SQL.prevHashAt, [300]],
    ["a record by kind and seq", READ_SQL.bySeq, ["decision", 70]],
    ["a decision by trigger id", READ_SQL.firstByTrigger, ["decision", "t-70", CALLS]],
    ["the trigger list's entry", READ_SQL.listedTrigger, ["decision", "t-70"]],
    ["a decision's packets", READ_SQL.byDecision, ["decision-1", CALLS]],
    ["a submission", READ_SQL.lastBySubmission, ["submission-1", CALLS]],
    ["a decision's receipt", READ_SQL.receiptOfDecision, ["decision-70"]],
  ])("%s touches a bounded number of rows", async (_what, text, params) => {
    for (const [table, rows] of await touched(text as string, [...ref(), ...(params as unknown[])])) {
      expect(rows, `rows of ${table}`).toBeLessThanOrEqual(2);
    }
  });

  it("the write of a decision reads only the run's newest receipt besides the head", async () => {
    const { text, params } = await nextWrite();
    const rows = await touched(text, params);
    // The newest receipt's seq is read (one row): the write ran whole, as it would have been sent.
    expect(rows.get("action_receipts"), "rows of action_receipts").toBe(1);
    for (const [table, count] of rows) expect(count, `rows of ${table}`).toBeLessThanOrEqual(2);
  });
});
