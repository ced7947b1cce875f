import { ScenarioSpec } from "../../core/spec/schema.js";
import type { HashDigest } from "../../json/hash.js";
import type { Page, ScenarioRecord, ScenarioRegistry } from "../registries.js";
import {
  checkPageLimit,
  checkRedefinition,
  scenarioPage,
  scenarioRecord,
  scenarioScope,
  specBytes,
} from "../registry-common.js";
import { MAX_STATE_BYTES } from "../run-log/records.js";
import { decodeVerified, storeCorrupt } from "../stored-bytes.js";
import type { SqliteDatabase } from "./database.js";

const LABEL = "scenario registry";
/** Stored for the whole namespace (`default_tenant_id` null); NULL cannot take part in a primary key. */
const NAMESPACE_WIDE = "";

/** Verified records kept in memory by default (a few thousand specs of typical size are a few MB). */
export const DEFAULT_VERIFIED_CACHE_SIZE = 4096;

interface ScenarioRow {
  namespace_id: string;
  scenario_id: string;
  tenant_scope: string;
  spec_json: unknown;
  spec_hash: string;
}

/** A record `get` has verified, with the exact stored bytes it was verified from. */
interface VerifiedRecord {
  record: ScenarioRecord;
  specJson: Uint8Array;
}

/**
 * Scenario definitions in the run-state database (D2): they survive restarts. A row holds the canonical JSON
 * of the spec, whose sha256 is the spec hash; both are checked, and the spec decoded, whenever a row is read.
 *
 * Rows are immutable (a different spec under the same key is refused, and nothing updates or deletes them), so
 * `get` keeps the records it has verified in a bounded LRU map by row key. Every `get` still reads the visible row
 * (one indexed lookup): a definition added meanwhile by another connection or process (a tenant's own one that
 * shadows the namespace-wide one, say) is seen at once. When the row's spec hash and spec bytes are exactly those
 * a cached record was verified from, that record is served (frozen) instead of decoding and hashing the spec again;
 * any other row is verified in full. `list` and `define` always verify the rows they read.
 */
export class SqliteScenarioRegistry implements ScenarioRegistry {
  private readonly statements;
  /** Verified records by `rowKey`, least recently used first. */
  private readonly verifiedRecords = new Map<string, VerifiedRecord>();

  constructor(
    private readonly db: SqliteDatabase,
    private readonly cacheSize = DEFAULT_VERIFIED_CACHE_SIZE,
  ) {
    const columns = "namespace_id, scenario_id, tenant_scope, spec_json, spec_hash";
    const visible = "namespace_id = @namespace AND tenant_scope IN (@tenant, '')";
    // At most two rows (the tenant's own and the namespace-wide one) share an id, so 2 × limit rows always
    // hold `limit` distinct ids when there are that many.
    const pageOrder = "ORDER BY scenario_id, tenant_scope = '' LIMIT @rows";
    this.statements = {
      exact: db.prepare<ScenarioRow>(
        `SELECT ${columns} FROM scenarios WHERE namespace_id = ? AND scenario_id = ? AND tenant_scope = ?`,
      ),
      insert: db.prepare(`INSERT INTO scenarios (${columns}) VALUES (?, ?, ?, ?, ?)`),
      // The tenant's own row sorts after '' (a tenant scope is a non-empty decimal), so DESC puts it first; unlike
      // `ORDER BY tenant_scope = ''` this is the primary key's order and needs no sorter (≈ 6× faster).
      visible: db.prepare<ScenarioRow>(
        `SELECT ${columns} FROM scenarios
         WHERE namespace_id = @namespace AND scenario_id = @scenario AND tenant_scope IN (@tenant, '')
         ORDER BY tenant_scope DESC LIMIT 1`,
      ),
      first: db.prepare<ScenarioRow>(`SELECT ${columns} FROM scenarios WHERE ${visible} ${pageOrder}`),
      after: db.prepare<ScenarioRow>(
        `SELECT ${columns} FROM scenarios WHERE ${visible} AND scenario_id > @cursor ${pageOrder}`,
      ),
    };
  }

  async define(spec: ScenarioSpec, specHash: HashDigest): Promise<{ created: boolean }> {
    const bytes = specBytes(spec, specHash);
    const key = [String(spec.namespace_id), spec.scenario_id, scopeText(scenarioScope(spec))] as const;
    return this.db.write(LABEL, () => {
      const existing = this.statements.exact.get(...key);
      if (existing !== undefined) {
        checkRedefinition(this.verified(existing), specHash);
        return { created: false };
      }
      this.statements.insert.run(...key, bytes, specHash.value);
      return { created: true };
    });
  }

  async get(tenantId: bigint, namespaceId: bigint, scenarioId: string): Promise<ScenarioRecord | undefined> {
    const params = { namespace: String(namespaceId), scenario: scenarioId, tenant: String(tenantId) };
    const row = this.db.query(LABEL, () => this.statements.visible.get(params));
    if (row === undefined) return undefined;
    const key = rowKey(row.tenant_scope, row.namespace_id, row.scenario_id);
    let entry = this.verifiedRecords.get(key);
    if (entry === undefined || !sameBytes(entry, row)) {
      entry = { record: deepFreeze(this.verified(row)), specJson: row.spec_json as Uint8Array };
    }
    this.verifiedRecords.delete(key);
    this.verifiedRecords.set(key, entry);
    if (this.verifiedRecords.size > this.cacheSize) {
      const oldest = this.verifiedRecords.keys().next().value;
      if (oldest !== undefined) this.verifiedRecords.delete(oldest);
    }
    return entry.record;
  }

  async list(
    tenantId: bigint,
    namespaceId: bigint,
    cursor: string | null,
    limit: number,
  ): Promise<Page<ScenarioRecord>> {
    checkPageLimit(limit);
    const params = { namespace: String(namespaceId), tenant: String(tenantId), rows: 2 * limit };
    const rows = this.db.query(LABEL, () =>
      cursor === null ? this.statements.first.all(params) : this.statements.after.all({ ...params, cursor }),
    );
    return scenarioPage(
      rows.map((row) => this.verified(row)),
      limit,
    );
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }

  private verified(row: ScenarioRow): ScenarioRecord {
    const item = rowKey(row.tenant_scope, row.namespace_id, row.scenario_id);
    const fail = (what: string) => storeCorrupt("scenario registry", item, what);
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
}

/** How errors name a row: `<tenant scope or *>/<namespace>/<scenario id>`; also the key of the verified cache. */
function rowKey(tenantScope: string, namespaceId: string, scenarioId: string): string {
  return `${tenantScope || "*"}/${namespaceId}/${scenarioId}`;
}

/** Whether `row` holds exactly the hash and bytes `entry` was verified from. */
function sameBytes(entry: VerifiedRecord, row: ScenarioRow): boolean {
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

function scopeText(tenantId: bigint | null): string {
  return tenantId === null ? NAMESPACE_WIDE : String(tenantId);
}
