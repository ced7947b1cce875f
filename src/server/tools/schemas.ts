import { z } from "zod";
import { AccessDeniedError, ConflictError, InvalidInputError, NotFoundError } from "../../core/errors.js";
import { decode, NamespaceId, TenantId } from "../../core/wire/common.js";
import { compileJsonSchema, messageOf } from "../../evidence/contracts/load.js";
import { compactJson } from "../../json/write.js";
import { DataShapeRecord } from "../../store/registries.js";
import type { CallContext } from "../context.js";
import { ensureNamespaceAllowed } from "../policy/namespace.js";
import type { RegistryAction } from "../policy/registry-acl.js";
import type { ServerServices } from "../services.js";
import { pageArgs, pageLimit } from "./paging.js";
import type { ToolHandlers } from "./types.js";

const RegisterArgs = z.object({ record: DataShapeRecord });
const ListArgs = z.object({ tenant_id: TenantId, namespace_id: NamespaceId, ...pageArgs });
const GetArgs = z.object({
  tenant_id: TenantId,
  namespace_id: NamespaceId,
  schema_id: z.string(),
  version: z.string(),
});

export function schemaTools(services: ServerServices): ToolHandlers {
  const { schemas } = services;
  const admit = (context: CallContext, action: RegistryAction, scope: { tenant_id: bigint; namespace_id: bigint }) => {
    ensureNamespaceAllowed(services.namespaces, scope.tenant_id, scope.namespace_id);
    services.schemaRegistry.acl.authorize(context.auth, action, scope);
  };
  return {
    async schemas_register(args, context) {
      const { record } = decode(RegisterArgs, args, "arguments");
      admit(context, "register", record);
      checkSigning(services, record);
      await checkLimits(services, record);
      try {
        compileJsonSchema(record.schema);
      } catch (error) {
        throw new InvalidInputError(`invalid schema: ${messageOf(error)}`);
      }
      await schemas.register(record);
      return { record };
    },
    async schemas_list(args, context) {
      const request = decode(ListArgs, args, "arguments");
      admit(context, "list", request);
      return schemas.list(request.tenant_id, request.namespace_id, request.cursor, pageLimit(request));
    },
    async schemas_get(args, context) {
      const request = decode(GetArgs, args, "arguments");
      admit(context, "get", request);
      const record = await schemas.get(request.tenant_id, request.namespace_id, request.schema_id, request.version);
      if (record === undefined) throw new NotFoundError("schema_not_found", "schema not found");
      return { record };
    },
  };
}

/** `require_signing`: signing metadata must be present and non-blank. */
function checkSigning(services: ServerServices, record: DataShapeRecord): void {
  if (!services.schemaRegistry.acl.requireSigning) return;
  const signing = record.signing;
  if (signing === undefined) throw new AccessDeniedError("unauthorized", "schema signing metadata required");
  if (signing.key_id.trim().length === 0 || signing.signature.trim().length === 0) {
    throw new AccessDeniedError("unauthorized", "schema signing metadata invalid");
  }
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
