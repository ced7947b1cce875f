import { z } from "zod";
import { AccessDeniedError, ConflictError, InvalidInputError, NotFoundError } from "../../core/errors.js";
import { NamespaceId, TenantId } from "../../core/wire/common.js";
import { compileJsonSchema, messageOf } from "../../evidence/contracts/load.js";
import { verifyStrict } from "../../evidence/trust/ed25519.js";
import { canonicalBytes, compactJson } from "../../json/write.js";
import { DataShapeRecord } from "../../store/registries.js";
import { auditCorrelation } from "../audit.js";
import type { CallContext } from "../context.js";
import type { RegistryAction } from "../policy/registry-acl.js";
import type { ServerServices } from "../services.js";
import { pageArgs, pageLimit } from "./paging.js";
import { defineTool } from "./tool.js";

const RegisterArgs = z.object({ record: DataShapeRecord });
const ListArgs = z.object({ tenant_id: TenantId, namespace_id: NamespaceId, ...pageArgs });
const GetArgs = z.object({
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  schema_id: z.string(),
  version: z.string(),
});

const schemasRegister = defineTool({
  name: "schemas_register",
  args: RegisterArgs,
  argumentSize: "document",
  // Registering the same record twice changes nothing.
  annotations: { idempotentHint: true },
  async run({ record }, { services, context }) {
    await admit(services, context, "register", record);
    checkSigning(services, record);
    await checkLimits(services, record);
    try {
      compileJsonSchema(record.schema);
    } catch (error) {
      throw new InvalidInputError(`invalid schema: ${messageOf(error)}`);
    }
    await services.schemas.register(record);
    return { record };
  },
});

const schemasList = defineTool({
  name: "schemas_list",
  args: ListArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run(request, { services, context }) {
    await admit(services, context, "list", request);
    return services.schemas.list(request.tenant_id, request.namespace_id, request.cursor, pageLimit(request));
  },
});

const schemasGet = defineTool({
  name: "schemas_get",
  args: GetArgs,
  argumentSize: "small",
  annotations: { readOnlyHint: true, idempotentHint: true },
  async run(request, { services, context }) {
    await admit(services, context, "get", request);
    const { schemas } = services;
    const record = await schemas.get(request.tenant_id, request.namespace_id, request.schema_id, request.version);
    if (record === undefined) throw new NotFoundError("schema_not_found", "schema not found");
    return { record };
  },
});

export const SCHEMA_TOOLS = [schemasRegister, schemasList, schemasGet];

/** The namespace scope, then the registry ACL; every ACL decision is audited (`registry_audit`). */
async function admit(
  services: ServerServices,
  context: CallContext,
  action: RegistryAction,
  scope: { tenant_id: bigint; namespace_id: bigint; schema_id?: string; version?: string },
): Promise<void> {
  await services.scopes.ensure(scope.tenant_id, scope.namespace_id, context);
  const decision = services.schemaRegistry.acl.decide(context.auth, action, scope);
  services.audit.registry({
    tenant_id: scope.tenant_id,
    ...auditCorrelation(context),
    namespace_id: scope.namespace_id,
    action,
    allowed: decision.allowed,
    reason: decision.reason,
    principal_id: context.auth.principalId,
    roles: decision.roles,
    policy_class: decision.policyClass,
    schema_id: scope.schema_id ?? null,
    schema_version: scope.version ?? null,
  });
  services.schemaRegistry.acl.enforce(decision);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * `require_signing` (D14): the record must carry non-blank `key_id` and `signature` (the reference's whole rule).
 * With `signing_keys` configured, the signature must also be a valid Ed25519 signature (base64) over the canonical
 * JSON of the schema by the key its `key_id` names (the key's configured path). Without keys the startup notices
 * warn that signatures are only checked for presence.
 */
function checkSigning(services: ServerServices, record: DataShapeRecord): void {
  if (!services.schemaRegistry.acl.requireSigning) return;
  const deny = (reason: string): never => {
    throw new AccessDeniedError("unauthorized", reason);
  };
  const signing = record.signing ?? deny("schema signing metadata required");
  if (signing.key_id.trim().length === 0 || signing.signature.trim().length === 0) {
    deny("schema signing metadata invalid");
  }
  const keys = services.schemaRegistry.signingKeys;
  if (keys.size === 0) return;
  if (!BASE64.test(signing.signature.trim())) deny("schema signing metadata invalid");
  if (signing.algorithm !== undefined && signing.algorithm.toLowerCase() !== "ed25519") {
    deny(`schema signing algorithm not supported: ${signing.algorithm}`);
  }
  const key = keys.get(signing.key_id) ?? deny("schema signing key not authorized");
  const signature = new Uint8Array(Buffer.from(signing.signature.trim(), "base64"));
  if (!verifyStrict(signature, canonicalBytes(record.schema), key)) deny("schema signature verification failed");
}

async function checkLimits(services: ServerServices, record: DataShapeRecord): Promise<void> {
  const { maxSchemaBytes, maxEntries } = services.schemaRegistry;
  const size = Buffer.byteLength(compactJson(record.schema));
  if (size > maxSchemaBytes) {
    throw new InvalidInputError(`schema exceeds size limit: ${size} bytes (max ${maxSchemaBytes})`);
  }
  if (maxEntries !== null && (await services.schemas.count(record.tenant_id, record.namespace_id)) >= maxEntries) {
    throw new ConflictError("schema_entries_exceeded", "schema registry max entries exceeded");
  }
}
