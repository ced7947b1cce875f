import { ConflictError, NotFoundError } from "../../core/errors.js";
import { LruMap } from "../../core/lru-map.js";
import { ControlPlane } from "../../core/run/control-plane.js";
import { specHash } from "../../core/spec/hash.js";
import type { ScenarioSpec } from "../../core/spec/schema.js";
import type { ScenarioRecord } from "../../store/registries.js";
import type { CallContext } from "../context.js";
import type { ServerServices } from "../services.js";

/** How many control planes are kept; one more evicts the least recently used. */
export const PLANE_CACHE_SIZE = 256;

/**
 * One control plane per defined scenario, built on first use and kept while it is among the `capacity` most
 * recently used: the scenario's spec is validated once, and every run of it shares the store, the evidence
 * pipeline and the policies. An evicted plane is rebuilt from the registry when next needed. Eviction cannot
 * break the serialization of calls on a run (D3): the lock is per store and run, shared by every plane over the
 * store, so a plane evicted while one of its calls is still running excludes the rebuilt plane's calls on that
 * run as before (and each commit is checked against the version it read).
 */
export class ScenarioRuntimes {
  private readonly planes: LruMap<string, ControlPlane>;

  constructor(
    private readonly services: ServerServices,
    capacity = PLANE_CACHE_SIZE,
  ) {
    this.planes = new LruMap(capacity);
  }

  /** Validates and records a spec (engine §1.4): capabilities, strict comparators, then the core checks. */
  async define(spec: ScenarioSpec) {
    const hash = specHash(spec);
    const existing = await this.services.scenarios.get(
      spec.default_tenant_id ?? 0n,
      spec.namespace_id,
      spec.scenario_id,
    );
    const sameScope = existing !== undefined && existing.tenant_id === spec.default_tenant_id;
    if (sameScope && existing.spec_hash.value !== hash.value) {
      throw new ConflictError("scenario_exists", "scenario already defined");
    }
    if (!sameScope) {
      this.services.evidence.validateSpec(spec);
      this.planeFor({
        tenant_id: spec.default_tenant_id,
        namespace_id: spec.namespace_id,
        scenario_id: spec.scenario_id,
        spec,
        spec_hash: hash,
      });
      await this.services.scenarios.define(spec, hash);
    }
    return { scenario_id: spec.scenario_id, spec_hash: hash };
  }

  /** The control plane of a scenario, for a caller that `[namespace]` and tenant isolation admit to its scope. */
  async admitted(context: CallContext, tenantId: bigint, namespaceId: bigint, scenarioId: string) {
    await this.services.scopes.ensure(tenantId, namespaceId, context);
    return this.lookup(tenantId, namespaceId, scenarioId);
  }

  /** The control plane of a scenario the tenant can see in the namespace. */
  async lookup(tenantId: bigint, namespaceId: bigint, scenarioId: string): Promise<ControlPlane> {
    const record = await this.services.scenarios.get(tenantId, namespaceId, scenarioId);
    if (record === undefined) throw new NotFoundError("scenario_not_defined", "scenario not defined");
    return this.planeFor(record);
  }

  private planeFor(record: ScenarioRecord): ControlPlane {
    const key = `${record.tenant_id ?? "*"}/${record.namespace_id}/${record.scenario_id}/${record.spec_hash.value}`;
    let plane = this.planes.get(key);
    if (plane === undefined) {
      const { runs, evidence, dispatchPolicy } = this.services;
      plane = new ControlPlane(record.spec, {
        store: runs,
        evidence: this.services.decisionEvidence,
        trust: evidence.trust,
        recordDisclosure: evidence.recordDisclosure,
        dispatchPolicy,
        backoff: jitteredBackoff,
        receipts: this.services.actions.issuer ?? undefined,
      });
      this.planes.set(key, plane);
    }
    return plane;
  }
}

/** Up to 2^attempt ms (capped at 100 ms), randomized so that racing processes fall out of step. */
function jitteredBackoff(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 2 ** attempt)));
}
