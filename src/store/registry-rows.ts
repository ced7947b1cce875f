import { ScenarioSpec } from "../core/spec/schema.js";
import { DataShapeRecord, type ScenarioRecord } from "./registries.js";
import { MAX_SCHEMA_BYTES, scenarioRecord, scenarioScope } from "./registry-common.js";
import { MAX_STATE_BYTES } from "./run-log/records.js";
import { decodeVerified, storeCorrupt } from "./stored-bytes.js";

/*
 * Registry rows as SQL backends (SQLite, PostgreSQL) store them, and how they are read back: as untrusted, every
 * row's bytes checked against its hash, decoded with its schema, and its key columns against the decoded record.
 */

/** Stored for the whole namespace (`default_tenant_id` null); NULL cannot take part in a primary key. */
const NAMESPACE_WIDE = "";

/** Verified scenario records kept in memory by default (a few thousand specs of typical size are a few MB). */
export const DEFAULT_VERIFIED_CACHE_SIZE = 4096;

/** Room for a data shape's metadata beside its schema, when checking stored sizes on read. */
const MAX_SHAPE_RECORD_BYTES = 2 * MAX_SCHEMA_BYTES;

export interface ScenarioRow {
  namespace_id: string;
  scenario_id: string;
  tenant_scope: string;
  spec_json: unknown;
  spec_hash: string;
}

export interface ShapeRow {
  tenant_id: string;
  namespace_id: string;
  schema_id: string;
  version: string;
  record_json: unknown;
  record_sha256: string;
}

/** The `tenant_scope` column of a definition: the tenant id as decimal text, or '' for the whole namespace. */
export function scopeText(tenantId: bigint | null): string {
  return tenantId === null ? NAMESPACE_WIDE : String(tenantId);
}

/** How errors name a scenario row: `<tenant scope or *>/<namespace>/<scenario id>`. */
function scenarioRowKey(row: ScenarioRow): string {
  return `${row.tenant_scope || "*"}/${row.namespace_id}/${row.scenario_id}`;
}

export function verifiedScenario(row: ScenarioRow): ScenarioRecord {
  const fail = (what: string) => storeCorrupt("scenario registry", scenarioRowKey(row), what);
  const spec = decodeVerified(ScenarioSpec, row.spec_json, row.spec_hash, MAX_STATE_BYTES, fail);
  if (
    String(spec.namespace_id) !== row.namespace_id ||
    spec.scenario_id !== row.scenario_id ||
    scopeText(scenarioScope(spec)) !== row.tenant_scope
  ) {
    throw fail("key columns do not match the spec");
  }
  return scenarioRecord(spec, { algorithm: "sha256", value: row.spec_hash });
}

export function verifiedDataShape(row: ShapeRow): DataShapeRecord {
  const item = `${row.tenant_id}/${row.namespace_id}/${row.schema_id}@${row.version}`;
  const fail = (what: string) => storeCorrupt("schema registry", item, what);
  const record = decodeVerified(DataShapeRecord, row.record_json, row.record_sha256, MAX_SHAPE_RECORD_BYTES, fail);
  if (
    String(record.tenant_id) !== row.tenant_id ||
    String(record.namespace_id) !== row.namespace_id ||
    record.schema_id !== row.schema_id ||
    record.version !== row.version
  ) {
    throw fail("key columns do not match the record");
  }
  return record;
}

/** A record verified once, with the exact stored bytes it was verified from. */
interface VerifiedEntry {
  record: ScenarioRecord;
  specJson: Uint8Array;
}

/**
 * Scenario rows are immutable (a different spec under the same key is refused, and nothing updates or deletes
 * them), so a registry keeps the records it has verified in a bounded LRU map by row key. The row is still read on
 * every `get` (a definition added meanwhile elsewhere is seen at once); when its spec hash and spec bytes are exactly
 * those a cached record was verified from, that record is served (frozen) instead of decoding and hashing again. Any
 * other row is verified in full, so a row changed in the database still fails closed.
 */
export class VerifiedScenarios {
  /** Verified records by row key, least recently used first. */
  private readonly entries = new Map<string, VerifiedEntry>();

  constructor(private readonly size = DEFAULT_VERIFIED_CACHE_SIZE) {}

  record(row: ScenarioRow): ScenarioRecord {
    const key = scenarioRowKey(row);
    let entry = this.entries.get(key);
    if (entry === undefined || !sameBytes(entry, row)) {
      entry = { record: deepFreeze(verifiedScenario(row)), specJson: row.spec_json as Uint8Array };
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.size) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return entry.record;
  }
}

/** Whether `row` holds exactly the hash and bytes `entry` was verified from. */
function sameBytes(entry: VerifiedEntry, row: ScenarioRow): boolean {
  return (
    entry.record.spec_hash.value === row.spec_hash &&
    row.spec_json instanceof Uint8Array &&
    Buffer.compare(row.spec_json, entry.specJson) === 0
  );
}

/** Freezes `value` and everything reachable from it, so a shared cached record cannot be changed by a caller. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
