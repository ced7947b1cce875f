import { z } from "zod";
import { AccessDeniedError, InvalidInputError, NotFoundError } from "../../core/errors.js";
import { precheckStage } from "../../core/run/precheck.js";
import { type ScenarioSpec, ScenarioSpec as ScenarioSpecSchema } from "../../core/spec/schema.js";
import { validateSpec } from "../../core/spec/validate.js";
import { AnyJson, NamespaceId, nullable, TenantId } from "../../core/wire/common.js";
import { compileJsonSchema, messageOf } from "../../evidence/contracts/load.js";
import { validatePrecheckStrict } from "../../evidence/contracts/strict.js";
import { isJsonObject, type JsonValue } from "../../json/value.js";
import type { ServerServices } from "../services.js";
import { defineTool } from "./tool.js";

const PrecheckArgs = z.object({
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  scenario_id: nullable(z.string()),
  spec: nullable(ScenarioSpecSchema),
  stage_id: nullable(z.string()),
  data_shape: z.object({ schema_id: z.string(), version: z.string() }),
  payload: AnyJson,
});
type PrecheckArgs = z.output<typeof PrecheckArgs>;

/** `precheck` (evidence §5.5): what a stage would decide on asserted data, without touching any run. */
const precheck = defineTool({
  name: "precheck",
  args: PrecheckArgs,
  argumentSize: "document",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run(request, { services, context, rawArgs }) {
    await services.scopes.ensure(request.tenant_id, request.namespace_id, context);
    const shape = await services.schemas.get(
      request.tenant_id,
      request.namespace_id,
      request.data_shape.schema_id,
      request.data_shape.version,
    );
    if (shape === undefined) throw new NotFoundError("schema_not_found", "schema not found");
    validatePayload(shape.schema, request.payload);
    const spec = await resolveSpec(services, request);
    if (spec.default_tenant_id !== null && spec.default_tenant_id !== request.tenant_id) {
      throw new AccessDeniedError("unauthorized", "tenant_id does not match scenario tenant");
    }
    const strict = services.evidence.strictValidation;
    if (strict !== null) validatePrecheckStrict(spec, shape.schema, strict);
    const result = precheckStage(spec, request.stage_id, assertionsOf(spec, request.payload), services.evidence.trust);
    services.audit.precheck({
      unsafe_client_correlation_id: context.clientCorrelationId,
      server_correlation_id: context.serverCorrelationId,
      tenant_id: request.tenant_id,
      namespace_id: request.namespace_id,
      scenario_id: spec.scenario_id,
      stage_id: request.stage_id,
      schema_id: request.data_shape.schema_id,
      schema_version: request.data_shape.version,
      request: rawArgs,
      response: result as unknown as JsonValue,
    });
    return result;
  },
});

export const PRECHECK_TOOLS = [precheck];

function validatePayload(schema: JsonValue, payload: JsonValue): void {
  let problems: string | undefined;
  try {
    problems = compileJsonSchema(schema)(payload);
  } catch (error) {
    throw new InvalidInputError(`invalid schema: ${messageOf(error)}`);
  }
  if (problems !== undefined) throw new InvalidInputError(`payload does not match schema: ${problems}`);
}

async function resolveSpec(services: ServerServices, request: PrecheckArgs): Promise<ScenarioSpec> {
  const { spec, scenario_id: scenarioId } = request;
  if (spec !== null) {
    if (scenarioId !== null && scenarioId !== spec.scenario_id) {
      throw new InvalidInputError("scenario_id does not match spec");
    }
    if (spec.namespace_id !== request.namespace_id) throw new InvalidInputError("namespace_id does not match spec");
    services.evidence.validateSpec(spec);
    validateSpec(spec);
    return spec;
  }
  if (scenarioId === null) throw new InvalidInputError("scenario_id or spec is required");
  const record = await services.scenarios.get(request.tenant_id, request.namespace_id, scenarioId);
  if (record === undefined) throw new NotFoundError("scenario_not_in_namespace", "scenario not in namespace");
  return record.spec;
}

/** The asserted value of each condition: an object payload keyed by condition id, or a lone condition's value. */
function assertionsOf(spec: ScenarioSpec, payload: JsonValue): Map<string, JsonValue> {
  if (isJsonObject(payload)) {
    const ids = spec.conditions.map((condition) => condition.condition_id);
    return new Map(ids.filter((id) => payload[id] !== undefined).map((id) => [id, payload[id] as JsonValue]));
  }
  const only = spec.conditions[0];
  if (spec.conditions.length !== 1 || only === undefined) {
    throw new InvalidInputError("payload must be an object keyed by condition ids");
  }
  return new Map([[only.condition_id, payload]]);
}
