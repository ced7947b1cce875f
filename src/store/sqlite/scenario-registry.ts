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
import { decodeVerified, type SqliteDatabase, storeCorrupt } from "./database.js";
import { MAX_STATE_BYTES } from "./run-state.js";

const LABEL = "scenario registry";
/** Stored for the whole namespace (`default_tenant_id` null); NULL cannot take part in a primary key. */
const NAMESPACE_WIDE = "";

interface ScenarioRow {
  namespace_id: string;
  scenario_id: string;
  tenant_scope: string;
  spec_json: unknown;
  spec_hash: string;
}

/**
 * Scenario definitions in the run-state database (D2): they survive restarts. A row holds the canonical JSON
 * of the spec, whose sha256 is the spec hash; both are checked, and the spec decoded, on every read.
 */
export class SqliteScenarioRegistry implements ScenarioRegistry {
  private readonly statements;

  constructor(private readonly db: SqliteDatabase) {
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
      visible: db.prepare<ScenarioRow>(
        `SELECT ${columns} FROM scenarios
         WHERE namespace_id = @namespace AND scenario_id = @scenario AND tenant_scope IN (@tenant, '')
         ORDER BY tenant_scope = '' LIMIT 1`,
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
    return row === undefined ? undefined : this.verified(row);
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
    const item = `${row.tenant_scope || "*"}/${row.namespace_id}/${row.scenario_id}`;
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

function scopeText(tenantId: bigint | null): string {
  return tenantId === null ? NAMESPACE_WIDE : String(tenantId);
}
