import { z } from "zod";
import { AccessDeniedError, DecisionGateError, InvalidInputError } from "../../core/errors.js";
import { EvidenceQuery } from "../../core/spec/schema.js";
import { decode, NamespaceId, nullable, TenantId, Timestamp } from "../../core/wire/common.js";
import type { JsonValue } from "../../json/value.js";
import { canonicalBytes } from "../../json/write.js";
import type { ServerServices } from "../services.js";
import type { ToolHandlers } from "./types.js";

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

export function evidenceTools(services: ServerServices): ToolHandlers {
  const { capabilities, pipeline } = services.evidence;
  return {
    async evidence_query(args, call) {
      const { query, context } = decode(QueryArgs, args, "arguments");
      await services.scopes.ensure(context.tenant_id, context.namespace_id, call);
      capabilities.validateQuery(query);
      return { result: await pipeline.answer(query, context) };
    },
    async providers_list(args) {
      decode(z.object({}), args, "arguments");
      return { providers: capabilities.listProviders() };
    },
    async provider_contract_get(args) {
      const { provider_id } = decode(ContractArgs, args, "arguments");
      requireNonBlank(provider_id, "provider_id");
      ensureDisclosed(services, provider_id);
      return withinDiscoveryLimit(services, capabilities.contractView(provider_id));
    },
    async provider_check_schema_get(args) {
      const { provider_id, check_id } = decode(CheckArgs, args, "arguments");
      requireNonBlank(provider_id, "provider_id");
      requireNonBlank(check_id, "check_id");
      ensureDisclosed(services, provider_id);
      return withinDiscoveryLimit(services, capabilities.checkSchemaView(provider_id, check_id));
    },
  };
}

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
