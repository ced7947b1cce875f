/*
 * The schema of a Decision Gate store file, as versioned migrations. A migration is history: once released its
 * SQL never changes (files already migrated keep what it created), so it is written out here rather than derived
 * from the tables it describes; test/store/record-kinds.test.ts checks the result against the kinds table.
 */

export interface Migration {
  version: number;
  name: string;
  /** SQL statements, applied in order inside one transaction. */
  steps: string[];
}

/** The schema of a Decision Gate store file: run state, scenario registry and schema registry tables. */
export const STORE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "run heads, append-only run records, scenario and data-shape registries",
    steps: [
      `CREATE TABLE runs (
        run_pk INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        namespace_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        scenario_id TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        current_stage_id TEXT NOT NULL,
        stage_entered_at TEXT NOT NULL,
        status TEXT NOT NULL,
        dispatch_targets TEXT NOT NULL,
        triggers INTEGER NOT NULL,
        gate_evals INTEGER NOT NULL,
        decisions INTEGER NOT NULL,
        packets INTEGER NOT NULL,
        submissions INTEGER NOT NULL,
        tool_calls INTEGER NOT NULL,
        version INTEGER NOT NULL,
        chain_tip TEXT NOT NULL,
        head_hash TEXT NOT NULL,
        UNIQUE (tenant_id, namespace_id, run_id)
      )`,
      `CREATE TABLE run_records (
        run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
        position INTEGER NOT NULL,
        kind TEXT NOT NULL
          CHECK (kind IN ('trigger', 'gate_eval', 'decision', 'packet', 'submission', 'tool_call')),
        seq INTEGER NOT NULL,
        trigger_id TEXT,
        decision_id TEXT,
        submission_id TEXT,
        record_json BLOB NOT NULL,
        record_sha256 TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        PRIMARY KEY (run_pk, position)
      )`,
      "CREATE UNIQUE INDEX run_records_by_seq ON run_records (run_pk, kind, seq)",
      // Partial: tool-call records, the most frequent, carry no lookup id and stay out of these indexes.
      `CREATE INDEX run_records_by_trigger ON run_records (run_pk, kind, trigger_id, seq)
        WHERE trigger_id IS NOT NULL`,
      `CREATE INDEX run_records_by_decision ON run_records (run_pk, kind, decision_id, seq)
        WHERE decision_id IS NOT NULL`,
      `CREATE INDEX run_records_by_submission ON run_records (run_pk, kind, submission_id, seq)
        WHERE submission_id IS NOT NULL`,
      `CREATE TABLE scenarios (
        namespace_id TEXT NOT NULL,
        scenario_id TEXT NOT NULL,
        tenant_scope TEXT NOT NULL,
        spec_json BLOB NOT NULL,
        spec_hash TEXT NOT NULL,
        PRIMARY KEY (namespace_id, scenario_id, tenant_scope)
      )`,
      `CREATE TABLE data_shapes (
        tenant_id TEXT NOT NULL,
        namespace_id TEXT NOT NULL,
        schema_id TEXT NOT NULL,
        version TEXT NOT NULL,
        record_json BLOB NOT NULL,
        record_sha256 TEXT NOT NULL,
        PRIMARY KEY (tenant_id, namespace_id, schema_id, version)
      )`,
    ],
  },
  {
    version: 2,
    name: "action receipts beside each run's records",
    steps: [
      `CREATE TABLE action_receipts (
        run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
        seq INTEGER NOT NULL,
        decision_id TEXT NOT NULL,
        receipt_json BLOB NOT NULL,
        row_sha256 TEXT NOT NULL,
        PRIMARY KEY (run_pk, seq)
      )`,
      "CREATE INDEX action_receipts_by_decision ON action_receipts (run_pk, decision_id)",
    ],
  },
  {
    version: 3,
    name: "trigger ids listed apart from the lookup index",
    steps: [
      // A second, independent way to find a run's trigger and decision by trigger id (WITHOUT ROWID: its own
      // b-tree), so that an index entry lost or a lookup column edited cannot make a decided trigger look new.
      `CREATE TABLE run_trigger_ids (
        run_pk INTEGER NOT NULL REFERENCES runs (run_pk),
        kind TEXT NOT NULL CHECK (kind IN ('trigger', 'decision')),
        trigger_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (run_pk, kind, trigger_id)
      ) WITHOUT ROWID`,
      // Filled from the records themselves (NOT INDEXED: never from the index it is there to check).
      `INSERT INTO run_trigger_ids (run_pk, kind, trigger_id, seq)
        SELECT run_pk, kind, trigger_id, MIN(seq) FROM run_records NOT INDEXED
        WHERE kind IN ('trigger', 'decision') AND trigger_id IS NOT NULL
        GROUP BY run_pk, kind, trigger_id`,
    ],
  },
];
