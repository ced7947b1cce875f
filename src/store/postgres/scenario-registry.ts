import { ControlPlaneError } from "../../core/errors.js";
import type { ScenarioSpec } from "../../core/spec/schema.js";
import type { HashDigest } from "../../json/hash.js";
import type { Page, ScenarioRecord, ScenarioRegistry } from "../registries.js";
import { checkPageLimit, checkRedefinition, scenarioPage, scenarioScope, specBytes } from "../registry-common.js";
import {
  DEFAULT_VERIFIED_CACHE_SIZE,
  type ScenarioRow,
  scopeText,
  VerifiedScenarios,
  verifiedScenario,
} from "../registry-rows.js";
import type { PostgresDatabase } from "./database.js";

const LABEL = "scenario registry";
const COLUMNS = "namespace_id, scenario_id, tenant_scope, spec_json, spec_hash";
const VISIBLE = "namespace_id = $1 AND tenant_scope IN ($2, '')";
// At most two rows (the tenant's own and the namespace-wide one) share an id, so 2 × limit rows always hold `limit`
// distinct ids when there are that many. `false` sorts first: the tenant's own row before the namespace-wide one.
const PAGE_ORDER = "ORDER BY scenario_id, tenant_scope = '' LIMIT $3";

/**
 * Scenario definitions in the run-state database (D2), shared by every replica: a definition made through one is
 * visible through all others at once. Rows and their checks are those of the SQLite registry (registry-rows.ts):
 * the canonical JSON of the spec with its sha256, verified and decoded whenever a row is read.
 */
export class PostgresScenarioRegistry implements ScenarioRegistry {
  private readonly verifiedRecords: VerifiedScenarios;

  constructor(
    private readonly db: PostgresDatabase,
    cacheSize = DEFAULT_VERIFIED_CACHE_SIZE,
  ) {
    this.verifiedRecords = new VerifiedScenarios(cacheSize);
  }

  /** Rows are never changed or deleted, so an insert that finds its key taken compares with the row that took it. */
  async define(spec: ScenarioSpec, specHash: HashDigest): Promise<{ created: boolean }> {
    const bytes = specBytes(spec, specHash);
    const key = [String(spec.namespace_id), spec.scenario_id, scopeText(scenarioScope(spec))];
    const inserted = await this.db.query(
      LABEL,
      `INSERT INTO scenarios (${COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1 AS inserted`,
      [...key, bytes, specHash.value],
    );
    if (inserted.length > 0) return { created: true };
    const [existing] = await this.db.query<ScenarioRow>(
      LABEL,
      `SELECT ${COLUMNS} FROM scenarios WHERE namespace_id = $1 AND scenario_id = $2 AND tenant_scope = $3`,
      key,
    );
    if (existing === undefined) {
      throw new ControlPlaneError("store_error", `${LABEL} error: the definition that holds this key vanished`);
    }
    checkRedefinition(verifiedScenario(existing), specHash);
    return { created: false };
  }

  async get(tenantId: bigint, namespaceId: bigint, scenarioId: string): Promise<ScenarioRecord | undefined> {
    // The tenant's own row sorts after '' (a tenant scope is a non-empty decimal), so DESC puts it first.
    const [row] = await this.db.query<ScenarioRow>(
      LABEL,
      `SELECT ${COLUMNS} FROM scenarios WHERE ${VISIBLE} AND scenario_id = $3 ORDER BY tenant_scope DESC LIMIT 1`,
      [String(namespaceId), String(tenantId), scenarioId],
    );
    return row === undefined ? undefined : this.verifiedRecords.record(row);
  }

  async list(
    tenantId: bigint,
    namespaceId: bigint,
    cursor: string | null,
    limit: number,
  ): Promise<Page<ScenarioRecord>> {
    checkPageLimit(limit);
    const params = [String(namespaceId), String(tenantId), 2 * limit];
    const rows =
      cursor === null
        ? await this.db.query<ScenarioRow>(
            LABEL,
            `SELECT ${COLUMNS} FROM scenarios WHERE ${VISIBLE} ${PAGE_ORDER}`,
            params,
          )
        : await this.db.query<ScenarioRow>(
            LABEL,
            `SELECT ${COLUMNS} FROM scenarios WHERE ${VISIBLE} AND scenario_id > $4 ${PAGE_ORDER}`,
            [...params, cursor],
          );
    return scenarioPage(rows.map(verifiedScenario), limit);
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }
}
