import { z } from "zod";
import type { ScenarioSpec } from "../core/spec/schema.js";
import {
  AnyJson,
  type HashDigest,
  NamespaceId,
  nullable,
  omittedWhenNull,
  TenantId,
  Timestamp,
} from "../core/wire/common.js";

/*
 * Contracts of the scenario and data-shape registries. Implementations: memory, SQLite and PostgreSQL (src/store).
 * Like run-state stores, the SQL implementations treat what they read back as untrusted and verify it.
 */

/** A defined scenario. `tenant_id` is the spec's `default_tenant_id`: null means every tenant of the namespace. */
export interface ScenarioRecord {
  tenant_id: bigint | null;
  namespace_id: bigint;
  scenario_id: string;
  spec: ScenarioSpec;
  spec_hash: HashDigest;
}

export interface Page<T> {
  items: T[];
  /** The cursor of the last item, whenever the page is not empty (the reference's pagination); else null. */
  next_token: string | null;
}

/**
 * Scenario definitions, scoped by (tenant scope, namespace, scenario id) and durable where the store is (D2).
 */
export interface ScenarioRegistry {
  /**
   * Records a definition. Defining an identical spec again (same `spec_hash`) returns `created: false`;
   * a different spec under the same scope and id throws `ConflictError("scenario_exists", "scenario already defined")`.
   */
  define(spec: ScenarioSpec, specHash: HashDigest): Promise<{ created: boolean }>;
  /** The scenario a caller of `tenantId` sees: its own tenant-scoped definition first, else the namespace-wide one. */
  get(tenantId: bigint, namespaceId: bigint, scenarioId: string): Promise<ScenarioRecord | undefined>;
  /** Definitions visible to the tenant in the namespace, by scenario id; the cursor is a scenario id. */
  list(tenantId: bigint, namespaceId: bigint, cursor: string | null, limit: number): Promise<Page<ScenarioRecord>>;
  ready(): Promise<boolean>;
  close?(): Promise<void>;
}

export const DataShapeSigning = z.object({
  key_id: z.string(),
  signature: z.string(),
  algorithm: omittedWhenNull(z.string()),
});

/** A registered data shape (JSON Schema) (evidence §5.3). Records are immutable. */
export const DataShapeRecord = z.object({
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  schema_id: z.string(),
  version: z.string(),
  schema: AnyJson,
  description: nullable(z.string()),
  created_at: Timestamp,
  signing: omittedWhenNull(DataShapeSigning),
});
export type DataShapeRecord = z.output<typeof DataShapeRecord>;

/** Data shapes, by (tenant, namespace, schema id, version). Cursors are `{"schema_id":..,"version":..}` JSON text. */
export interface SchemaRegistry {
  /** Throws `ConflictError("schema_exists", "schema already registered")` for an existing identity. */
  register(record: DataShapeRecord): Promise<void>;
  get(tenantId: bigint, namespaceId: bigint, schemaId: string, version: string): Promise<DataShapeRecord | undefined>;
  /** Sorted by (schema_id, version); an unparseable cursor throws `InvalidInputError("invalid cursor")`. */
  list(tenantId: bigint, namespaceId: bigint, cursor: string | null, limit: number): Promise<Page<DataShapeRecord>>;
  /** How many records the tenant has in the namespace (for `max_entries`). */
  count(tenantId: bigint, namespaceId: bigint): Promise<number>;
  ready(): Promise<boolean>;
  close?(): Promise<void>;
}
