import type { ScenarioSpec } from "../../core/spec/schema.js";
import type { HashDigest } from "../../json/hash.js";
import type { Page, ScenarioRecord, ScenarioRegistry } from "../registries.js";
import {
  afterScenarioCursor,
  checkPageLimit,
  checkRedefinition,
  compareScenarioRecords,
  scenarioPage,
  scenarioRecord,
  scenarioVisible,
  specBytes,
} from "../registry-common.js";

/** Scenario definitions in process memory (used when the run-state store is memory too). */
export class MemoryScenarioRegistry implements ScenarioRegistry {
  private readonly records = new Map<string, ScenarioRecord>();

  async define(spec: ScenarioSpec, specHash: HashDigest): Promise<{ created: boolean }> {
    specBytes(spec, specHash);
    const record = structuredClone(scenarioRecord(spec, specHash));
    const key = recordKey(record.tenant_id, record.namespace_id, record.scenario_id);
    const existing = this.records.get(key);
    if (existing !== undefined) {
      checkRedefinition(existing, specHash);
      return { created: false };
    }
    this.records.set(key, record);
    return { created: true };
  }

  async get(tenantId: bigint, namespaceId: bigint, scenarioId: string): Promise<ScenarioRecord | undefined> {
    const record =
      this.records.get(recordKey(tenantId, namespaceId, scenarioId)) ??
      this.records.get(recordKey(null, namespaceId, scenarioId));
    return structuredClone(record);
  }

  async list(
    tenantId: bigint,
    namespaceId: bigint,
    cursor: string | null,
    limit: number,
  ): Promise<Page<ScenarioRecord>> {
    checkPageLimit(limit);
    const candidates = [...this.records.values()]
      .filter((record) => scenarioVisible(record, tenantId, namespaceId))
      .filter((record) => afterScenarioCursor(record.scenario_id, cursor))
      .sort(compareScenarioRecords);
    return structuredClone(scenarioPage(candidates, limit));
  }

  async ready(): Promise<boolean> {
    return true;
  }
}

function recordKey(tenantId: bigint | null, namespaceId: bigint, scenarioId: string): string {
  return `${tenantId ?? "*"}/${namespaceId}/${scenarioId}`;
}
