import { sha256Hex } from "../../json/hash.js";
import { canonicalBytes } from "../../json/write.js";
import type { DataShapeRecord, Page, SchemaRegistry } from "../registries.js";
import {
  checkEntryCount,
  checkPageLimit,
  checkSchemaSize,
  parseSchemaCursor,
  type SchemaLimits,
  schemaExists,
  schemaPage,
} from "../registry-common.js";
import { type ShapeRow, verifiedDataShape } from "../registry-rows.js";
import type { PostgresDatabase } from "./database.js";

const LABEL = "schema registry";
const COLUMNS = "tenant_id, namespace_id, schema_id, version, record_json, record_sha256";
const SCOPE = "tenant_id = $1 AND namespace_id = $2";

/**
 * Data shapes in PostgreSQL (`[schema_registry] type = "postgres"`), shared by every replica. Rows and their checks
 * are those of the SQLite registry (registry-rows.ts): the canonical JSON of the whole record with its sha256.
 */
export class PostgresSchemaRegistry implements SchemaRegistry {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly limits: SchemaLimits,
  ) {}

  /**
   * The existence check, the `max_entries` count and the insert run under a transaction lock on the tenant and
   * namespace, so replicas registering at once can neither both pass the count nor race on one identity.
   */
  async register(record: DataShapeRecord): Promise<void> {
    checkSchemaSize(record, this.limits.maxSchemaBytes);
    const bytes = canonicalBytes(record);
    const scope = [String(record.tenant_id), String(record.namespace_id)];
    await this.db.transaction(LABEL, async (queries) => {
      await queries.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`data_shapes/${scope.join("/")}`]);
      const existing = await queries.query(
        `SELECT 1 FROM data_shapes WHERE ${SCOPE} AND schema_id = $3 AND version = $4`,
        [...scope, record.schema_id, record.version],
      );
      if (existing.length > 0) throw schemaExists();
      const [counted] = await queries.query<{ count: number }>(
        `SELECT count(*)::integer AS count FROM data_shapes WHERE ${SCOPE}`,
        scope,
      );
      checkEntryCount(counted?.count ?? 0, this.limits.maxEntries);
      await queries.query(`INSERT INTO data_shapes (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, [
        ...scope,
        record.schema_id,
        record.version,
        bytes,
        sha256Hex(bytes),
      ]);
    });
  }

  async get(tenantId: bigint, namespaceId: bigint, schemaId: string, version: string) {
    const [row] = await this.db.query<ShapeRow>(
      LABEL,
      `SELECT ${COLUMNS} FROM data_shapes WHERE ${SCOPE} AND schema_id = $3 AND version = $4`,
      [String(tenantId), String(namespaceId), schemaId, version],
    );
    return row === undefined ? undefined : verifiedDataShape(row);
  }

  async list(
    tenantId: bigint,
    namespaceId: bigint,
    cursor: string | null,
    limit: number,
  ): Promise<Page<DataShapeRecord>> {
    checkPageLimit(limit);
    const after = parseSchemaCursor(cursor);
    const scope = [String(tenantId), String(namespaceId), limit];
    const order = "ORDER BY schema_id, version LIMIT $3";
    const rows =
      after === null
        ? await this.db.query<ShapeRow>(LABEL, `SELECT ${COLUMNS} FROM data_shapes WHERE ${SCOPE} ${order}`, scope)
        : await this.db.query<ShapeRow>(
            LABEL,
            `SELECT ${COLUMNS} FROM data_shapes
             WHERE ${SCOPE} AND (schema_id > $4 OR (schema_id = $4 AND version > $5)) ${order}`,
            [...scope, after.schema_id, after.version],
          );
    return schemaPage(rows.map(verifiedDataShape));
  }

  async count(tenantId: bigint, namespaceId: bigint): Promise<number> {
    const [row] = await this.db.query<{ count: number }>(
      LABEL,
      `SELECT count(*)::integer AS count FROM data_shapes WHERE ${SCOPE}`,
      [String(tenantId), String(namespaceId)],
    );
    return row?.count ?? 0;
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }
}
