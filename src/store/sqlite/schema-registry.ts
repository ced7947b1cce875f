import { ControlPlaneError } from "../../core/errors.js";
import { sha256Hex } from "../../json/hash.js";
import { canonicalBytes } from "../../json/write.js";
import type { DataShapeRecord, Page, SchemaRegistry } from "../registries.js";
import {
  checkEntryCount,
  checkPageLimit,
  checkSchemaSize,
  MAX_SCHEMA_BYTES,
  parseSchemaCursor,
  type SchemaLimits,
  schemaExists,
  schemaPage,
} from "../registry-common.js";
import { type ShapeRow, verifiedDataShape } from "../registry-rows.js";
import type { SqliteDatabase } from "./database.js";

const LABEL = "schema registry";

/**
 * Data shapes in SQLite (`[schema_registry] type = "sqlite"`). A row holds the canonical JSON of the whole
 * record with its sha256; reads verify both and decode the record. Schemas are capped at 1 MiB.
 */
export class SqliteSchemaRegistry implements SchemaRegistry {
  private readonly statements;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly limits: SchemaLimits,
  ) {
    if (limits.maxSchemaBytes > MAX_SCHEMA_BYTES) {
      throw new ControlPlaneError(
        "store_config_invalid",
        `schema_registry_max_schema_bytes out of range: ${limits.maxSchemaBytes} (max ${MAX_SCHEMA_BYTES})`,
      );
    }
    const columns = "tenant_id, namespace_id, schema_id, version, record_json, record_sha256";
    const scope = "tenant_id = @tenant AND namespace_id = @namespace";
    this.statements = {
      one: db.prepare<ShapeRow>(
        `SELECT ${columns} FROM data_shapes WHERE ${scope} AND schema_id = @id AND version = @version`,
      ),
      insert: db.prepare(`INSERT INTO data_shapes (${columns}) VALUES (?, ?, ?, ?, ?, ?)`),
      count: db.prepare<{ count: number }>(`SELECT count(*) AS count FROM data_shapes WHERE ${scope}`),
      first: db.prepare<ShapeRow>(
        `SELECT ${columns} FROM data_shapes WHERE ${scope} ORDER BY schema_id, version LIMIT @limit`,
      ),
      after: db.prepare<ShapeRow>(
        `SELECT ${columns} FROM data_shapes
         WHERE ${scope} AND (schema_id > @id OR (schema_id = @id AND version > @version))
         ORDER BY schema_id, version LIMIT @limit`,
      ),
    };
  }

  async register(record: DataShapeRecord): Promise<void> {
    checkSchemaSize(record, this.limits.maxSchemaBytes);
    const bytes = canonicalBytes(record);
    const key = [String(record.tenant_id), String(record.namespace_id), record.schema_id, record.version] as const;
    const scope = { tenant: key[0], namespace: key[1] };
    this.db.write(LABEL, () => {
      if (this.statements.one.get({ ...scope, id: record.schema_id, version: record.version }) !== undefined) {
        throw schemaExists();
      }
      checkEntryCount(this.statements.count.get(scope)?.count ?? 0, this.limits.maxEntries);
      this.statements.insert.run(...key, bytes, sha256Hex(bytes));
    });
  }

  async get(tenantId: bigint, namespaceId: bigint, schemaId: string, version: string) {
    const params = { tenant: String(tenantId), namespace: String(namespaceId), id: schemaId, version };
    const row = this.db.query(LABEL, () => this.statements.one.get(params));
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
    const scope = { tenant: String(tenantId), namespace: String(namespaceId), limit };
    const rows = this.db.query(LABEL, () =>
      after === null
        ? this.statements.first.all(scope)
        : this.statements.after.all({ ...scope, id: after.schema_id, version: after.version }),
    );
    return schemaPage(rows.map(verifiedDataShape));
  }

  async count(tenantId: bigint, namespaceId: bigint): Promise<number> {
    const scope = { tenant: String(tenantId), namespace: String(namespaceId) };
    return this.db.query(LABEL, () => this.statements.count.get(scope)?.count ?? 0);
  }

  async ready(): Promise<boolean> {
    return this.db.ready();
  }
}
