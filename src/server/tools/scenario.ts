import { z } from "zod";
import type { TriggerOutcome } from "../../core/run/control-plane.js";
import { NextRequest, StatusRequest, SubmitRequest } from "../../core/run/requests.js";
import { type GateEvalRecord, RunConfig, TriggerEvent } from "../../core/run/schema.js";
import { ScenarioSpec } from "../../core/spec/schema.js";
import { NamespaceId, nullable, TenantId, Timestamp } from "../../core/wire/common.js";
import { disclosedGateRecords } from "../../evidence/disclosure.js";
import type { CallContext } from "../context.js";
import { type FeedbackLevel, grantFeedback } from "../policy/feedback.js";
import type { ServerServices } from "../services.js";
import { pageArgs, pageLimit } from "./paging.js";
import { defineTool } from "./tool.js";

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

const scenarioDefine = defineTool({
  name: "scenario_define",
  args: DefineArgs,
  argumentSize: "document",
  // Content-addressed: defining the same spec twice changes nothing.
  annotations: { idempotentHint: true },
  async run({ spec }, { services, runtimes, context }) {
    await services.scopes.ensure(spec.default_tenant_id, spec.namespace_id, context);
    return runtimes.define(spec);
  },
});

const scenarioStart = defineTool({
  name: "scenario_start",
  args: StartArgs,
  argumentSize: "small",
  // Starting a run that exists is refused (`run_exists`) and changes nothing.
  annotations: { idempotentHint: true },
  async run({ scenario_id, run_config, started_at, issue_entry_packets }, { services, runtimes, context }) {
    const plane = await runtimes.admitted(context, run_config.tenant_id, run_config.namespace_id, scenario_id);
    const { state, receipt } = await plane.start(run_config, started_at, issue_entry_packets);
    if (receipt !== null) services.actions.log?.append(receipt);
    return state;
  },
});

const scenarioStatus = defineTool({
  name: "scenario_status",
  args: StatusArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run({ scenario_id, request }, { runtimes, context }) {
    const plane = await runtimes.admitted(context, request.tenant_id, request.namespace_id, scenario_id);
    return plane.status(request);
  },
});

const scenarioNext = defineTool({
  name: "scenario_next",
  args: NextArgs,
  argumentSize: "small",
  // Providers may answer over HTTP or MCP. A trigger id already decided replays its decision (D4): no new
  // evidence query, decision or packet.
  annotations: { idempotentHint: true, openWorldHint: true },
  attachesAction: true,
  async run({ scenario_id, request, feedback }, { services, runtimes, context }) {
    const plane = await runtimes.admitted(context, request.tenant_id, request.namespace_id, scenario_id);
    const outcome = await plane.next(request);
    const block = await feedbackBlock(services, context, feedback, request, plane.spec, outcome.gateEvals);
    const result = block === undefined ? outcome.result : { ...outcome.result, feedback: block };
    return withAction(services, result, outcome);
  },
});

const scenarioSubmit = defineTool({
  name: "scenario_submit",
  args: SubmitArgs,
  argumentSize: "document",
  // The same submission again returns the recorded one; a different one under its id is refused.
  annotations: { idempotentHint: true },
  async run({ scenario_id, request }, { runtimes, context }) {
    const plane = await runtimes.admitted(context, request.tenant_id, request.namespace_id, scenario_id);
    return plane.submit(request);
  },
});

const scenarioTrigger = defineTool({
  name: "scenario_trigger",
  args: TriggerArgs,
  argumentSize: "document",
  // As scenario_next.
  annotations: { idempotentHint: true, openWorldHint: true },
  attachesAction: true,
  async run({ scenario_id, trigger }, { services, runtimes, context }) {
    const plane = await runtimes.admitted(context, trigger.tenant_id, trigger.namespace_id, scenario_id);
    const outcome = await plane.trigger(trigger);
    return withAction(services, outcome.result, outcome);
  },
});

const scenariosList = defineTool({
  name: "scenarios_list",
  args: ListArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run(request, { services, context }) {
    await services.scopes.ensure(request.tenant_id, request.namespace_id, context);
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
});

export const SCENARIO_TOOLS = [
  scenarioDefine,
  scenarioStart,
  scenarioStatus,
  scenarioNext,
  scenarioSubmit,
  scenarioTrigger,
  scenariosList,
];

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
