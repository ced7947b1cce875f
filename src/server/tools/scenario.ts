import { z } from "zod";
import { ConflictError, NotFoundError } from "../../core/errors.js";
import { LruMap } from "../../core/lru-map.js";
import { ControlPlane, type TriggerOutcome } from "../../core/run/control-plane.js";
import { NextRequest, StatusRequest, SubmitRequest } from "../../core/run/requests.js";
import { type GateEvalRecord, RunConfig, TriggerEvent } from "../../core/run/schema.js";
import { specHash } from "../../core/spec/hash.js";
import { ScenarioSpec } from "../../core/spec/schema.js";
import { decode, NamespaceId, nullable, TenantId, Timestamp } from "../../core/wire/common.js";
import { disclosedGateRecords } from "../../evidence/disclosure.js";
import type { ScenarioRecord } from "../../store/registries.js";
import type { CallContext } from "../context.js";
import { type FeedbackLevel, grantFeedback } from "../policy/feedback.js";
import type { ServerServices } from "../services.js";
import { type PageArgs, pageArgs, pageLimit } from "./paging.js";
import type { ToolHandlers } from "./types.js";

const DefineArgs = z.object({ spec: ScenarioSpec });
const StartArgs = z.object({
  scenario_id: z.string(),
  run_config: RunConfig,
  started_at: Timestamp,
  issue_entry_packets: z.boolean(),
});
const StatusArgs = z.object({ scenario_id: z.string(), request: StatusRequest });
const NextArgs = z.object({
  scenario_id: z.string(),
  request: NextRequest,
  feedback: nullable(z.enum(["summary", "trace", "evidence"])),
});
const SubmitArgs = z.object({ scenario_id: z.string(), request: SubmitRequest });
const TriggerArgs = z.object({ scenario_id: z.string(), trigger: TriggerEvent });
const ListArgs = z.object({ tenant_id: TenantId, namespace_id: NamespaceId, ...pageArgs });

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

export function scenarioTools(services: ServerServices, runtimes: ScenarioRuntimes): ToolHandlers {
  const allowNamespace = (tenantId: bigint | null, namespaceId: bigint, context: CallContext) =>
    services.scopes.ensure(tenantId, namespaceId, context);
  return {
    async scenario_define(args, context) {
      const { spec } = decode(DefineArgs, args, "arguments");
      await allowNamespace(spec.default_tenant_id, spec.namespace_id, context);
      return runtimes.define(spec);
    },
    async scenario_start(args, context) {
      const { scenario_id, run_config, started_at, issue_entry_packets } = decode(StartArgs, args, "arguments");
      await allowNamespace(run_config.tenant_id, run_config.namespace_id, context);
      const plane = await runtimes.lookup(run_config.tenant_id, run_config.namespace_id, scenario_id);
      const { state, receipt } = await plane.startWithReceipt(run_config, started_at, issue_entry_packets);
      if (receipt !== null) services.actions.log?.append(receipt);
      return state;
    },
    async scenario_status(args, context) {
      const { scenario_id, request } = decode(StatusArgs, args, "arguments");
      await allowNamespace(request.tenant_id, request.namespace_id, context);
      const plane = await runtimes.lookup(request.tenant_id, request.namespace_id, scenario_id);
      return plane.status(request);
    },
    async scenario_next(args, context) {
      const { scenario_id, request, feedback } = decode(NextArgs, args, "arguments");
      await allowNamespace(request.tenant_id, request.namespace_id, context);
      const plane = await runtimes.lookup(request.tenant_id, request.namespace_id, scenario_id);
      const outcome = await plane.nextWithEvaluations(request);
      const block = await feedbackBlock(services, context, feedback, request, plane.spec, outcome.gateEvals);
      const result = block === undefined ? outcome.result : { ...outcome.result, feedback: block };
      return withAction(services, result, outcome);
    },
    async scenario_submit(args, context) {
      const { scenario_id, request } = decode(SubmitArgs, args, "arguments");
      await allowNamespace(request.tenant_id, request.namespace_id, context);
      const plane = await runtimes.lookup(request.tenant_id, request.namespace_id, scenario_id);
      return plane.submit(request);
    },
    async scenario_trigger(args, context) {
      const { scenario_id, trigger } = decode(TriggerArgs, args, "arguments");
      await allowNamespace(trigger.tenant_id, trigger.namespace_id, context);
      const plane = await runtimes.lookup(trigger.tenant_id, trigger.namespace_id, scenario_id);
      const outcome = await plane.triggerWithReceipt(trigger);
      return withAction(services, outcome.result, outcome);
    },
    async scenarios_list(args, context) {
      const request = decode(ListArgs, args, "arguments") as PageArgs & { tenant_id: bigint; namespace_id: bigint };
      await allowNamespace(request.tenant_id, request.namespace_id, context);
      const page = await services.scenarios.list(
        request.tenant_id,
        request.namespace_id,
        request.cursor,
        pageLimit(request),
      );
      return {
        items: page.items.map((item) => ({
          scenario_id: item.scenario_id,
          namespace_id: item.namespace_id,
          spec_hash: item.spec_hash,
        })),
        next_token: page.next_token,
      };
    },
  };
}

/** Adds the decision's action receipt as `action` (spec §6), logging it when it was just issued. */
function withAction<T extends object>(services: ServerServices, result: T, outcome: TriggerOutcome) {
  if (outcome.receipt === null) return result;
  if (!outcome.replayed) services.actions.log?.append(outcome.receipt);
  return { ...result, action: outcome.receipt };
}

/** The `feedback` block of a `scenario_next` result (interface §1.2 item 4), or undefined when none is due. */
async function feedbackBlock(
  services: ServerServices,
  context: CallContext,
  requested: FeedbackLevel | null,
  request: NextRequest,
  spec: ScenarioSpec,
  recorded: GateEvalRecord[] | null,
) {
  const scope = { tenant_id: request.tenant_id, namespace_id: request.namespace_id };
  const grant = grantFeedback(services.feedback, requested, context.auth, services.principals, scope);
  if (!grant.emit) return undefined;
  const block: Record<string, unknown> = { level: grant.level };
  if (grant.deniedReason !== null) block.denied_reason = grant.deniedReason;
  if (grant.level === "summary") return block;
  const gateEvals = recorded ?? (await recordedGateEvals(services, request));
  block.gate_evaluations = gateEvals.map((record) => record.evaluation);
  if (grant.level === "evidence") {
    block.gate_records = disclosedGateRecords(spec, gateEvals, services.evidence.disclosure);
  }
  return block;
}

/** For a replayed trigger: the gate evaluations recorded when it was first decided. */
async function recordedGateEvals(services: ServerServices, request: NextRequest): Promise<GateEvalRecord[]> {
  const state = await services.runs.load(request);
  return (state?.gate_evals ?? []).filter((record) => record.trigger_id === request.trigger_id);
}
