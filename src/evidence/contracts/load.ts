import { open } from "node:fs/promises";
import { Ajv2020, type AnySchema } from "ajv/dist/2020.js";
import { DecisionGateError, type ErrorDetails, HashError } from "../../core/errors.js";
import { COMPARATORS, type Comparator } from "../../core/spec/schema.js";
import { decode } from "../../core/wire/common.js";
import { type HashDigest, hashCanonical } from "../../json/hash.js";
import { parseJsonBytes } from "../../json/parse.js";
import { isJsonObject, type JsonValue, toPlainJson } from "../../json/value.js";
import { type CheckContract, ProviderContract } from "./schema.js";

/*
 * Loading and compiling provider contracts (evidence §2.3). The order of the checks, and so which error a broken
 * file reports first, follows the reference: path → read → size → parse → provider id → transport → per check
 * (params schema, result schema, comparator list) → contract hash.
 */

/** Largest contract file, and largest canonical contract, in bytes. */
export const MAX_CAPABILITY_BYTES = 1024 * 1024;
export const MAX_PATH_COMPONENT_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

export type CapabilityErrorCode =
  | "provider_missing"
  | "check_missing"
  | "params_missing"
  | "params_invalid"
  | "expected_invalid"
  | "comparator_not_allowed"
  | "contract_missing"
  | "contract_read_failed"
  | "contract_parse_failed"
  | "contract_invalid"
  | "contract_path_invalid"
  | "duplicate_provider"
  | "schema_compile_failed"
  | "contract_hash_failed";

/** A capability violation (reference `CapabilityViolation`, JSON-RPC -32602); the message is `"<code>: <text>"`. */
export class CapabilityError extends DecisionGateError {
  declare readonly code: CapabilityErrorCode;

  constructor(code: CapabilityErrorCode, message: string, details?: ErrorDetails) {
    super("invalid_params", code, `${code}: ${message}`, details);
  }
}

/** Returns why `value` does not satisfy a schema (ajv's error text), or undefined when it does. */
export type SchemaValidator = (value: JsonValue) => string | undefined;

export type ContractSource = "builtin" | "file";

export interface LoadedCheck {
  readonly contract: CheckContract;
  readonly validateParams: SchemaValidator;
  readonly validateResult: SchemaValidator;
}

export interface LoadedContract {
  readonly contract: ProviderContract;
  readonly contractHash: HashDigest;
  readonly source: ContractSource;
  /** Keyed by check id; a repeated check id replaces the earlier one, as in the reference. */
  readonly checks: ReadonlyMap<string, LoadedCheck>;
}

/** Loads the contract file of the external provider configured as `expectedProviderId`. */
export async function loadContractFile(path: string, expectedProviderId: string): Promise<LoadedContract> {
  if (path.length === 0) {
    throw new CapabilityError("contract_missing", `provider capability contract missing for ${expectedProviderId}`);
  }
  checkContractPath(path);
  const bytes = await readCapped(path);
  if (bytes.length > MAX_CAPABILITY_BYTES) {
    throw invalidContract(expectedProviderId, "capability contract exceeds size limit");
  }
  const contract = parseContract(bytes, path);
  if (contract.provider_id !== expectedProviderId) {
    throw invalidContract(
      expectedProviderId,
      `provider id mismatch (expected ${expectedProviderId}, got ${contract.provider_id})`,
    );
  }
  if (contract.transport !== "mcp") {
    throw invalidContract(expectedProviderId, "external providers must declare transport=mcp");
  }
  return loadContract(contract, "file");
}

/** Compiles every check of `contract`, checks its comparator lists and computes its hash. */
export function loadContract(contract: ProviderContract, source: ContractSource): LoadedContract {
  const checks = new Map<string, LoadedCheck>();
  for (const check of contract.checks) checks.set(check.check_id, loadCheck(contract.provider_id, check));
  return { contract, contractHash: contractHash(contract), source, checks };
}

function invalidContract(providerId: string, error: string): CapabilityError {
  return new CapabilityError("contract_invalid", `provider capability contract invalid: ${providerId}: ${error}`);
}

function checkContractPath(path: string): void {
  const fail = (error: string) =>
    new CapabilityError("contract_path_invalid", `provider capability contract path invalid: ${path}: ${error}`);
  if (Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) throw fail("path exceeds max length");
  for (const component of path.split("/")) {
    if (Buffer.byteLength(component, "utf8") > MAX_PATH_COMPONENT_BYTES) {
      throw fail(`path component too long: ${component}`);
    }
  }
}

/** Reads at most one byte more than the size limit, so an oversized file is detected without reading it all. */
async function readCapped(path: string): Promise<Uint8Array> {
  try {
    const handle = await open(path, "r");
    try {
      const buffer = Buffer.alloc(MAX_CAPABILITY_BYTES + 1);
      let length = 0;
      while (length < buffer.length) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
      }
      return buffer.subarray(0, length);
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new CapabilityError(
      "contract_read_failed",
      `provider capability contract read failed: ${path}: ${messageOf(error)}`,
    );
  }
}

function parseContract(bytes: Uint8Array, path: string): ProviderContract {
  try {
    return decode(ProviderContract, parseJsonBytes(bytes), "contract");
  } catch (error) {
    throw new CapabilityError(
      "contract_parse_failed",
      `provider capability contract parse failed: ${path}: ${messageOf(error)}`,
    );
  }
}

function loadCheck(providerId: string, check: CheckContract): LoadedCheck {
  const compile = (schema: JsonValue) => {
    try {
      return compileJsonSchema(schema);
    } catch (error) {
      throw new CapabilityError(
        "schema_compile_failed",
        `schema compilation failed for ${providerId}.${check.check_id}: ${messageOf(error)}`,
      );
    }
  };
  const validateParams = compile(check.params_schema);
  const validateResult = compile(check.result_schema);
  if (check.allowed_comparators.length === 0) {
    throw invalidContract(providerId, `check ${check.check_id} missing allowed_comparators`);
  }
  if (!isCanonicalOrder(check.allowed_comparators)) {
    throw invalidContract(providerId, `check ${check.check_id} comparators not in canonical order`);
  }
  return { contract: check, validateParams, validateResult };
}

/** Non-decreasing in the canonical comparator order; repeats are tolerated, as in the reference. */
export function isCanonicalOrder(comparators: readonly Comparator[]): boolean {
  const positions = comparators.map((comparator) => COMPARATORS.indexOf(comparator));
  return positions.every((position, index) => index === 0 || (positions[index - 1] ?? 0) <= position);
}

function contractHash(contract: ProviderContract): HashDigest {
  try {
    return hashCanonical(contract, MAX_CAPABILITY_BYTES);
  } catch (error) {
    if (!(error instanceof HashError)) throw error;
    throw new CapabilityError(
      "contract_hash_failed",
      `contract hash failed for ${contract.provider_id}: ${error.message}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON Schema (Draft 2020-12) compilation, shared with the strict comparator validator.

/*
 * Formats are annotations only (the reference's validator does not assert them for 2020-12), and unknown keywords
 * such as `x-decision-gate` are allowed. Compiled schemas are not kept by ajv (`addUsedSchema: false`, and the
 * schema is removed from ajv's cache afterwards) so that compiling many schemas does not grow the shared instance.
 */
function createAjv(): Ajv2020 {
  return new Ajv2020({ strict: false, allErrors: true, validateFormats: false, addUsedSchema: false });
}

const sharedAjv = createAjv();
const compiledSchemas = new WeakMap<object, SchemaValidator>();

/** Compiles a JSON Schema (Draft 2020-12); throws ajv's error when the schema is invalid. */
export function compileJsonSchema(schema: JsonValue): SchemaValidator {
  const cacheable = typeof schema === "object" && schema !== null;
  const cached = cacheable ? compiledSchemas.get(schema) : undefined;
  if (cached !== undefined) return cached;
  const plain = toPlainJson(schema) as AnySchema;
  // Removing a schema that declares a root `$id` would also drop that id from the instance, which could be one
  // the instance itself relies on (the meta-schema's), so such schemas get an instance of their own.
  const ajv = isJsonObject(schema) && schema.$id !== undefined ? createAjv() : sharedAjv;
  let validate: ReturnType<Ajv2020["compile"]>;
  try {
    validate = ajv.compile(plain);
  } finally {
    if (ajv === sharedAjv && typeof plain === "object") sharedAjv.removeSchema(plain);
  }
  const validator: SchemaValidator = (value) =>
    validate(toPlainJson(value)) ? undefined : ajv.errorsText(validate.errors, { dataVar: "value", separator: "; " });
  if (cacheable) compiledSchemas.set(schema, validator);
  return validator;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
