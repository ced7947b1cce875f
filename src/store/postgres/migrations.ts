/*
 * The schema of a Decision Gate PostgreSQL database, as versioned migrations. As with SQLite (../sqlite/migrations.ts)
 * a released migration never changes: later changes are new versions. Every database a store opens gets the whole
 * set, whichever sections use it (run state, scenario definitions, data shapes), as a SQLite file does.
 *
 * Identifiers compare by their UTF-8 bytes (`COLLATE "C"`), the order SQLite's BINARY collation and the memory
 * store use, so pages and cursors are the same on every backend.
 */

export interface PostgresMigration {
  version: number;
  name: string;
  /** SQL statements, applied in order inside the one migration transaction. */
  steps: string[];
}

export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = [
  {
    version: 1,
    name: "run heads, append-only run records, trigger list, action receipts, scenario and data-shape registries",
    steps: [
      // Run state (docs/STORAGE.md): one head row per run, every record of every run, each run's trigger ids
      // listed apart from the lookup index, and the runs' action receipts. Keyed by tenant, namespace and run.
      `CREATE TABLE runs (
        tenant_id text NOT NULL,
        namespace_id text NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        created bigint GENERATED ALWAYS AS IDENTITY,
        scenario_id text NOT NULL,
        spec_hash text NOT NULL,
        current_stage_id text NOT NULL,
        stage_entered_at text NOT NULL,
        status text NOT NULL,
        dispatch_targets text NOT NULL,
        triggers integer NOT NULL,
        gate_evals integer NOT NULL,
        decisions integer NOT NULL,
        packets integer NOT NULL,
        submissions integer NOT NULL,
        tool_calls integer NOT NULL,
        version integer NOT NULL,
        chain_tip text NOT NULL,
        head_hash text NOT NULL,
        PRIMARY KEY (tenant_id, namespace_id, run_id)
      )`,
      `CREATE TABLE run_records (
        tenant_id text NOT NULL,
        namespace_id text NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        position integer NOT NULL,
        kind text NOT NULL
          CHECK (kind IN ('trigger', 'gate_eval', 'decision', 'packet', 'submission', 'tool_call')),
        seq integer NOT NULL,
        trigger_id text COLLATE "C",
        decision_id text COLLATE "C",
        submission_id text COLLATE "C",
        record_json bytea NOT NULL,
        record_sha256 text NOT NULL,
        prev_hash text NOT NULL,
        PRIMARY KEY (tenant_id, namespace_id, run_id, position),
        FOREIGN KEY (tenant_id, namespace_id, run_id) REFERENCES runs
      )`,
      "CREATE UNIQUE INDEX run_records_by_seq ON run_records (tenant_id, namespace_id, run_id, kind, seq)",
      `CREATE INDEX run_records_by_trigger ON run_records (tenant_id, namespace_id, run_id, kind, trigger_id, seq)
        WHERE trigger_id IS NOT NULL`,
      `CREATE INDEX run_records_by_decision ON run_records (tenant_id, namespace_id, run_id, kind, decision_id, seq)
        WHERE decision_id IS NOT NULL`,
      `CREATE INDEX run_records_by_submission
        ON run_records (tenant_id, namespace_id, run_id, kind, submission_id, seq)
        WHERE submission_id IS NOT NULL`,
      `CREATE TABLE run_trigger_ids (
        tenant_id text NOT NULL,
        namespace_id text NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        kind text NOT NULL CHECK (kind IN ('trigger', 'decision')),
        trigger_id text COLLATE "C" NOT NULL,
        seq integer NOT NULL,
        PRIMARY KEY (tenant_id, namespace_id, run_id, kind, trigger_id),
        FOREIGN KEY (tenant_id, namespace_id, run_id) REFERENCES runs
      )`,
      `CREATE TABLE action_receipts (
        tenant_id text NOT NULL,
        namespace_id text NOT NULL,
        run_id text COLLATE "C" NOT NULL,
        seq integer NOT NULL,
        decision_id text COLLATE "C" NOT NULL,
        receipt_json bytea NOT NULL,
        row_sha256 text NOT NULL,
        PRIMARY KEY (tenant_id, namespace_id, run_id, seq),
        FOREIGN KEY (tenant_id, namespace_id, run_id) REFERENCES runs
      )`,
      "CREATE INDEX action_receipts_by_decision ON action_receipts (tenant_id, namespace_id, run_id, decision_id, seq)",
      `CREATE TABLE scenarios (
        namespace_id text NOT NULL,
        scenario_id text COLLATE "C" NOT NULL,
        tenant_scope text COLLATE "C" NOT NULL,
        spec_json bytea NOT NULL,
        spec_hash text NOT NULL,
        PRIMARY KEY (namespace_id, scenario_id, tenant_scope)
      )`,
      `CREATE TABLE data_shapes (
        tenant_id text NOT NULL,
        namespace_id text NOT NULL,
        schema_id text COLLATE "C" NOT NULL,
        version text COLLATE "C" NOT NULL,
        record_json bytea NOT NULL,
        record_sha256 text NOT NULL,
        PRIMARY KEY (tenant_id, namespace_id, schema_id, version)
      )`,
    ],
  },
];
