import { z } from "zod";
import { AccessDeniedError, DecisionGateError, InvalidInputError } from "../../core/errors.js";
import { EvidenceQuery } from "../../core/spec/schema.js";
import { NamespaceId, nullable, TenantId, Timestamp } from "../../core/wire/common.js";
import type { JsonValue } from "../../json/value.js";
import { canonicalBytes } from "../../json/write.js";
import type { ServerServices } from "../services.js";
import { defineTool } from "./tool.js";

const QueryArgs = z.object({
  query: EvidenceQuery,
  context: z.object({
    tenant_id: TenantId,
    namespace_id: NamespaceId,
    run_id: z.string(),
    scenario_id: z.string(),
    stage_id: z.string(),
    trigger_id: z.string(),
    trigger_time: Timestamp,
    correlation_id: nullable(z.string()),
  }),
});
const ContractArgs = z.object({ provider_id: z.string() });
const CheckArgs = z.object({ provider_id: z.string(), check_id: z.string() });

const evidenceQuery = defineTool({
  name: "evidence_query",
  args: QueryArgs,
  argumentSize: "small",
  annotations: { openWorldHint: true },
  async run({ query, context }, { services, context: call }) {
    await services.scopes.ensure(context.tenant_id, context.namespace_id, call);
    services.evidence.capabilities.validateQuery(query);
    return { result: await services.evidence.pipeline.answer(query, context) };
  },
});

const providersList = defineTool({
  name: "providers_list",
  args: z.object({}),
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run(_args, { services }) {
    return { providers: services.evidence.capabilities.listProviders() };
  },
});

const providerContractGet = defineTool({
  name: "provider_contract_get",
  args: ContractArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run({ provider_id }, { services }) {
    requireNonBlank(provider_id, "provider_id");
    ensureDisclosed(services, provider_id);
    return withinDiscoveryLimit(services, services.evidence.capabilities.contractView(provider_id));
  },
});

const providerCheckSchemaGet = defineTool({
  name: "provider_check_schema_get",
  args: CheckArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run({ provider_id, check_id }, { services }) {
    requireNonBlank(provider_id, "provider_id");
    requireNonBlank(check_id, "check_id");
    ensureDisclosed(services, provider_id);
    return withinDiscoveryLimit(services, services.evidence.capabilities.checkSchemaView(provider_id, check_id));
  },
});

export const EVIDENCE_TOOLS = [evidenceQuery, providersList, providerContractGet, providerCheckSchemaGet];

function requireNonBlank(value: string, field: string): void {
  if (value.trim().length === 0) throw new InvalidInputError(`${field} must be non-empty`);
}

/** `[provider_discovery]`: the deny list wins; a non-empty allow list admits only its entries. */
function ensureDisclosed(services: ServerServices, providerId: string): void {
  const { allowlist, denylist } = services.providerDiscovery;
  if (denylist.includes(providerId) || (allowlist.length > 0 && !allowlist.includes(providerId))) {
    throw new AccessDeniedError("unauthorized", "provider contract disclosure denied");
  }
}

function withinDiscoveryLimit<T>(services: ServerServices, response: T): T {
  const limit = services.providerDiscovery.maxResponseBytes;
  const size = canonicalBytes(response as unknown as JsonValue).length;
  if (size > limit) {
    throw new DecisionGateError(
      "request_too_large",
      "discovery_response_too_large",
      `provider discovery response exceeds size limit (${size} > ${limit})`,
    );
  }
  return response;
}
