import { z } from "zod";
import { ConflictError, InvalidInputError } from "../core/errors.js";
import type { ScenarioSpec } from "../core/spec/schema.js";
import { type HashDigest, sha256Hex } from "../json/hash.js";
import { parseJson } from "../json/parse.js";
import { canonicalBytes, compactJson } from "../json/write.js";
import type { DataShapeRecord, Page, ScenarioRecord } from "./registries.js";

/*
 * Rules shared by the memory and SQLite registries, so both behave identically: page limits, byte-order
 * sorting, cursors, scenario visibility, and the schema size and entry limits.
 */

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 1000;
/** Hard cap on a registered schema's canonical size (the reference's SQLite `MAX_SCHEMA_BYTES`). */
export const MAX_SCHEMA_BYTES = 1024 * 1024;

export function checkPageLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new InvalidInputError(`limit must be between 1 and ${MAX_PAGE_LIMIT}`);
  }
}

/** Orders strings by their UTF-8 bytes, as SQLite's BINARY collation does (UTF-16 order differs). */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** A page whose `next_token` is the last item's cursor whenever the page is not empty (the reference's rule). */
export function pageOf<T>(items: T[], cursorOf: (item: T) => string): Page<T> {
  const last = items.at(-1);
  return { items, next_token: last === undefined ? null : cursorOf(last) };
}

// --- scenarios -------------------------------------------------------------------------------------------

/** The tenant scope of a definition: the spec's `default_tenant_id`, or null for the whole namespace. */
export function scenarioScope(spec: ScenarioSpec): bigint | null {
  return spec.default_tenant_id ?? null;
}

export function scenarioRecord(spec: ScenarioSpec, specHash: HashDigest): ScenarioRecord {
  return {
    tenant_id: scenarioScope(spec),
    namespace_id: spec.namespace_id,
    scenario_id: spec.scenario_id,
    spec,
    spec_hash: { algorithm: specHash.algorithm, value: specHash.value },
  };
}

/** The canonical bytes of a spec, after checking that `specHash` is their hash (a caller's bug otherwise). */
export function specBytes(spec: ScenarioSpec, specHash: HashDigest): Buffer {
  const bytes = canonicalBytes(spec);
  if (sha256Hex(bytes) !== specHash.value) throw new InvalidInputError("spec_hash does not match spec");
  return bytes;
}

/** D2: an identical re-definition is a no-op; a different spec under the same scope and id is refused. */
export function checkRedefinition(existing: ScenarioRecord, specHash: HashDigest): void {
  if (existing.spec_hash.value !== specHash.value)
    throw new ConflictError("scenario_exists", "scenario already defined");
}

/** Whether a caller of `tenantId` sees `record`: its own definitions and the namespace-wide ones. */
export function scenarioVisible(record: ScenarioRecord, tenantId: bigint, namespaceId: bigint): boolean {
  return record.namespace_id === namespaceId && (record.tenant_id === null || record.tenant_id === tenantId);
}

/** By scenario id (byte order), a tenant's own definition before the namespace-wide one. */
export function compareScenarioRecords(a: ScenarioRecord, b: ScenarioRecord): number {
  return compareUtf8(a.scenario_id, b.scenario_id) || Number(a.tenant_id === null) - Number(b.tenant_id === null);
}

/**
 * A page of scenarios from `candidates`: the visible records after the cursor, sorted with
 * `compareScenarioRecords`. A tenant's own definition shadows the namespace-wide one of the same id, so each id
 * appears once, as the record `get` returns; that also keeps a scenario-id cursor unambiguous.
 */
export function scenarioPage(candidates: ScenarioRecord[], limit: number): Page<ScenarioRecord> {
  const items: ScenarioRecord[] = [];
  for (const record of candidates) {
    if (items.length === limit) break;
    if (items.at(-1)?.scenario_id !== record.scenario_id) items.push(record);
  }
  return pageOf(items, (record) => record.scenario_id);
}

/** Whether `scenarioId` comes after the cursor in sort order (an unknown cursor still has a position). */
export function afterScenarioCursor(scenarioId: string, cursor: string | null): boolean {
  return cursor === null || compareUtf8(scenarioId, cursor) > 0;
}

// --- data shapes -----------------------------------------------------------------------------------------

export interface SchemaKey {
  schema_id: string;
  version: string;
}

const SchemaCursor = z.object({ schema_id: z.string(), version: z.string() });

/** The cursor text of a record: `{"schema_id":"…","version":"…"}`. */
export function schemaCursor(key: SchemaKey): string {
  return compactJson({ schema_id: key.schema_id, version: key.version });
}

/** Parses a cursor; anything but a JSON object with string `schema_id` and `version` is `invalid cursor`. */
export function parseSchemaCursor(cursor: string | null): SchemaKey | null {
  if (cursor === null) return null;
  let parsed: ReturnType<typeof SchemaCursor.safeParse>;
  try {
    parsed = SchemaCursor.safeParse(parseJson(cursor));
  } catch {
    throw new InvalidInputError("invalid cursor");
  }
  if (!parsed.success) throw new InvalidInputError("invalid cursor");
  return parsed.data;
}

/** By (schema_id, version), both in byte order. */
export function compareSchemaKeys(a: SchemaKey, b: SchemaKey): number {
  return compareUtf8(a.schema_id, b.schema_id) || compareUtf8(a.version, b.version);
}

export function schemaPage(items: DataShapeRecord[]): Page<DataShapeRecord> {
  return pageOf(items, schemaCursor);
}

export interface SchemaLimits {
  /** Largest canonical size of `record.schema` in bytes. */
  maxSchemaBytes: number;
  /** Most records per tenant and namespace; unlimited when undefined. */
  maxEntries?: number;
}

/** Canonical bytes of the record's schema, refused when over the limit with the reference's text. */
export function checkSchemaSize(record: DataShapeRecord, maxSchemaBytes: number): void {
  const size = canonicalBytes(record.schema).length;
  if (size > maxSchemaBytes) {
    throw new InvalidInputError(`schema exceeds size limit: ${size} bytes (max ${maxSchemaBytes})`);
  }
}

/** The reference store's per-tenant+namespace entry limit, checked atomically with the insert. */
export function checkEntryCount(count: number, maxEntries: number | undefined): void {
  if (maxEntries !== undefined && count >= maxEntries) {
    throw new InvalidInputError(`schema registry entry limit exceeded: ${count} entries (max ${maxEntries})`);
  }
}

export function schemaExists(): ConflictError {
  return new ConflictError("schema_exists", "schema already registered");
}
