import type { Comparator, ConditionSpec, EvidenceQuery, ScenarioSpec } from "../../core/spec/schema.js";
import type { HashDigest } from "../../json/hash.js";
import type { JsonValue } from "../../json/value.js";
import { BUILTIN_PROVIDER_IDS, builtinContract } from "./builtin.js";
import {
  CapabilityError,
  type ContractSource,
  type LoadedCheck,
  type LoadedContract,
  loadContract,
  type SchemaValidator,
} from "./load.js";
import type { CheckContract, CheckExample, DeterminismClass, ProviderContract } from "./schema.js";

export { CapabilityError, type CapabilityErrorCode } from "./load.js";

/** One item of the `providers_list` tool output. */
export interface ProviderSummary {
  provider_id: string;
  transport: "builtin" | "mcp";
  checks: string[];
}

/** The `provider_contract_get` tool output. */
export interface ProviderContractView {
  provider_id: string;
  contract: ProviderContract;
  contract_hash: HashDigest;
  source: ContractSource;
  version: null;
}

/** The `provider_check_schema_get` tool output. */
export interface CheckSchemaView {
  provider_id: string;
  check_id: string;
  params_required: boolean;
  params_schema: JsonValue;
  result_schema: JsonValue;
  allowed_comparators: Comparator[];
  determinism: DeterminismClass;
  anchor_types: string[];
  content_types: string[];
  examples: CheckExample[];
  contract_hash: HashDigest;
}

/**
 * The loaded provider contracts (built-in and from files), and the capability checks of `scenario_define`
 * (engine §1.4 step 4) and `evidence_query` that they enforce.
 */
export class CapabilityRegistry {
  private readonly providers = new Map<string, LoadedContract>();

  /** A registry holding the contracts of the given built-in providers (all four by default). */
  static withBuiltins(providerIds: readonly string[] = BUILTIN_PROVIDER_IDS): CapabilityRegistry {
    const registry = new CapabilityRegistry();
    for (const providerId of providerIds) registry.registerBuiltin(providerId);
    return registry;
  }

  register(loaded: LoadedContract): void {
    const providerId = loaded.contract.provider_id;
    if (this.providers.has(providerId)) {
      throw new CapabilityError("duplicate_provider", `duplicate provider id: ${providerId}`);
    }
    this.providers.set(providerId, loaded);
  }

  registerBuiltin(providerId: string): void {
    const contract = builtinContract(providerId);
    if (contract === undefined) {
      throw new CapabilityError("contract_missing", `provider capability contract missing for ${providerId}`);
    }
    this.register(loadContract(contract, "builtin"));
  }

  has(providerId: string): boolean {
    return this.providers.has(providerId);
  }

  /** Throws `provider_missing` when no contract is registered for `providerId`. */
  contractOf(providerId: string): LoadedContract {
    const loaded = this.providers.get(providerId);
    if (loaded === undefined) throw new CapabilityError("provider_missing", `provider not registered: ${providerId}`);
    return loaded;
  }

  /** Throws `provider_missing` or `check_missing`. */
  checkOf(providerId: string, checkId: string): LoadedCheck {
    const check = this.contractOf(providerId).checks.get(checkId);
    if (check === undefined) {
      throw new CapabilityError("check_missing", `check not supported: ${providerId}.${checkId}`);
    }
    return check;
  }

  /**
   * Engine §1.4 step 4, for every condition in spec order (referenced by a gate or not); throws the first
   * violation, its message naming the condition.
   */
  validateSpec(spec: ScenarioSpec): void {
    for (const condition of spec.conditions) {
      try {
        this.validateCondition(condition);
      } catch (error) {
        if (!(error instanceof CapabilityError)) throw error;
        throw new CapabilityError(error.code, `condition ${condition.condition_id}: ${withoutCode(error)}`);
      }
    }
  }

  /** The checks of the `evidence_query` tool: provider, check and params only. */
  validateQuery(query: EvidenceQuery): void {
    const check = this.checkOf(query.provider_id, query.check_id);
    validateParams(query, check);
  }

  /** Providers sorted by id, each with its check ids sorted (byte order, as the reference's ordered maps). */
  listProviders(): ProviderSummary[] {
    return sortedByBytes([...this.providers.keys()]).map((providerId) => {
      const loaded = this.contractOf(providerId);
      return {
        provider_id: providerId,
        transport: loaded.source === "builtin" ? "builtin" : "mcp",
        checks: sortedByBytes([...loaded.checks.keys()]),
      };
    });
  }

  contractView(providerId: string): ProviderContractView {
    const loaded = this.contractOf(providerId);
    return {
      provider_id: providerId,
      contract: loaded.contract,
      contract_hash: loaded.contractHash,
      source: loaded.source,
      version: null,
    };
  }

  checkSchemaView(providerId: string, checkId: string): CheckSchemaView {
    const contract: CheckContract = this.checkOf(providerId, checkId).contract;
    return {
      provider_id: providerId,
      check_id: checkId,
      params_required: contract.params_required,
      params_schema: contract.params_schema,
      result_schema: contract.result_schema,
      allowed_comparators: contract.allowed_comparators,
      determinism: contract.determinism,
      anchor_types: contract.anchor_types,
      content_types: contract.content_types,
      examples: contract.examples,
      contract_hash: this.contractOf(providerId).contractHash,
    };
  }

  private validateCondition(condition: ConditionSpec): void {
    const { provider_id: providerId, check_id: checkId } = condition.query;
    const check = this.checkOf(providerId, checkId);
    validateParams(condition.query, check);
    validateExpected(condition, `${providerId}.${checkId}`, check.validateResult);
    if (!check.contract.allowed_comparators.includes(condition.comparator)) {
      throw new CapabilityError(
        "comparator_not_allowed",
        `comparator not allowed for ${providerId}.${checkId}: ${condition.comparator}`,
      );
    }
  }
}

function validateParams(query: EvidenceQuery, check: LoadedCheck): void {
  const label = `${query.provider_id}.${query.check_id}`;
  if (query.params === undefined) {
    if (check.contract.params_required) {
      throw new CapabilityError("params_missing", `check params required for ${label}`);
    }
    return;
  }
  const problem = check.validateParams(query.params);
  if (problem !== undefined)
    throw new CapabilityError("params_invalid", `check params invalid for ${label}: ${problem}`);
}

/** `expected === null` means the condition has no expected value (engine §0: null and absent are the same). */
function validateExpected(condition: ConditionSpec, label: string, validateResult: SchemaValidator): void {
  const fail = (error: string) =>
    new CapabilityError("expected_invalid", `check expected value invalid for ${label}: ${error}`);
  const { comparator, expected } = condition;
  if (comparator === "exists" || comparator === "not_exists") {
    if (expected !== null) throw fail(`expected value must be omitted for ${comparator}`);
    return;
  }
  if (comparator === "in_set") {
    if (!Array.isArray(expected)) throw fail("expected array required for in_set comparator");
    expected.forEach((element, index) => {
      const problem = validateResult(element);
      if (problem !== undefined) throw fail(`in_set element ${index}: ${problem}`);
    });
    return;
  }
  if (expected === null) throw fail(`expected value required for ${comparator}`);
  const problem = validateResult(expected);
  if (problem !== undefined) throw fail(problem);
}

function withoutCode(error: CapabilityError): string {
  return error.message.slice(error.code.length + 2);
}

function sortedByBytes(values: string[]): string[] {
  return values.sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
}
