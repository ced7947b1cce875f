import type { DataShapeRecord, Page, SchemaRegistry } from "../registries.js";
import {
  checkEntryCount,
  checkPageLimit,
  checkSchemaSize,
  compareSchemaKeys,
  parseSchemaCursor,
  type SchemaLimits,
  schemaExists,
  schemaPage,
} from "../registry-common.js";

/** Data shapes in process memory (`[schema_registry] type = "memory"`). */
export class MemorySchemaRegistry implements SchemaRegistry {
  private readonly records = new Map<string, DataShapeRecord>();

  constructor(private readonly limits: SchemaLimits) {}

  async register(record: DataShapeRecord): Promise<void> {
    checkSchemaSize(record, this.limits.maxSchemaBytes);
    const key = recordKey(record.tenant_id, record.namespace_id, record.schema_id, record.version);
    if (this.records.has(key)) throw schemaExists();
    checkEntryCount(await this.count(record.tenant_id, record.namespace_id), this.limits.maxEntries);
    this.records.set(key, structuredClone(record));
  }

  async get(tenantId: bigint, namespaceId: bigint, schemaId: string, version: string) {
    return structuredClone(this.records.get(recordKey(tenantId, namespaceId, schemaId, version)));
  }

  async list(
    tenantId: bigint,
    namespaceId: bigint,
    cursor: string | null,
    limit: number,
  ): Promise<Page<DataShapeRecord>> {
    checkPageLimit(limit);
    const after = parseSchemaCursor(cursor);
    const items = this.inScope(tenantId, namespaceId)
      .filter((record) => after === null || compareSchemaKeys(record, after) > 0)
      .sort(compareSchemaKeys)
      .slice(0, limit);
    return structuredClone(schemaPage(items));
  }

  async count(tenantId: bigint, namespaceId: bigint): Promise<number> {
    return this.inScope(tenantId, namespaceId).length;
  }

  async ready(): Promise<boolean> {
    return true;
  }

  private inScope(tenantId: bigint, namespaceId: bigint): DataShapeRecord[] {
    return [...this.records.values()].filter(
      (record) => record.tenant_id === tenantId && record.namespace_id === namespaceId,
    );
  }
}

function recordKey(tenantId: bigint, namespaceId: bigint, schemaId: string, version: string): string {
  return JSON.stringify([String(tenantId), String(namespaceId), schemaId, version]);
}
