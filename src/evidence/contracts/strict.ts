import { DecisionGateError } from "../../core/errors.js";
import { COMPARATORS, type Comparator, type ScenarioSpec } from "../../core/spec/schema.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../../json/value.js";
import type { CapabilityRegistry } from "./capabilities.js";
import { compileJsonSchema, messageOf, type SchemaValidator } from "./load.js";

/*
 * The strict comparator/type validator of `scenario_define` (engine §3.5), also meant for precheck against
 * data-shape schemas. A result schema is reduced to one or more type classes; each class allows, forbids or
 * requires an explicit opt-in for each comparator, and several classes (type arrays, oneOf/anyOf variants) allow
 * only what all of them allow.
 */

export const TYPE_CLASSES = [
  "Dynamic",
  "Enum",
  "Null",
  "String",
  "DateTime",
  "Date",
  "Uuid",
  "Integer",
  "Number",
  "ArrayScalar",
  "ArrayComplex",
  "Object",
  "Boolean",
] as const;
export type TypeClass = (typeof TYPE_CLASSES)[number];

export type Allowance = "allowed" | "opt_in" | "forbidden";

export interface StrictOptions {
  /** `validation.enable_lexicographic`: permits the lex_* comparators at all. */
  readonly enableLexicographic: boolean;
  /** `validation.enable_deep_equals`: permits deep_equals / deep_not_equals at all. */
  readonly enableDeepEquals: boolean;
}

export const DEFAULT_STRICT_OPTIONS: StrictOptions = { enableLexicographic: false, enableDeepEquals: false };

/**
 * A condition rejected by the strict validator (JSON-RPC -32602). The message is the reference's wording (`text`),
 * followed by this project's detail (`notes`: type classes, the config key, the schema's source) in parentheses.
 */
export class StrictValidationError extends DecisionGateError {
  readonly text: string;
  readonly notes: readonly string[];

  constructor(text: string, notes: readonly string[] = []) {
    super("invalid_params", "strict_validation_failed", notes.length === 0 ? text : `${text} (${notes.join("; ")})`);
    this.text = text;
    this.notes = notes;
  }

  withNote(note: string): StrictValidationError {
    return new StrictValidationError(this.text, [...this.notes, note]);
  }
}

type ComparatorGroup = "equality" | "ordering" | "lexicographic" | "contains" | "in_set" | "deep" | "presence";

const GROUP_OF: Record<Comparator, ComparatorGroup> = {
  equals: "equality",
  not_equals: "equality",
  greater_than: "ordering",
  greater_than_or_equal: "ordering",
  less_than: "ordering",
  less_than_or_equal: "ordering",
  lex_greater_than: "lexicographic",
  lex_greater_than_or_equal: "lexicographic",
  lex_less_than: "lexicographic",
  lex_less_than_or_equal: "lexicographic",
  contains: "contains",
  in_set: "in_set",
  deep_equals: "deep",
  deep_not_equals: "deep",
  exists: "presence",
  not_exists: "presence",
};

const Y: Allowance = "allowed";
const O: Allowance = "opt_in";
const N: Allowance = "forbidden";

/** The §3.5 matrix, one row per class; columns: eq/ne, gt/gte/lt/lte, lex_*, contains, in_set, deep_*, exists. */
const MATRIX: Record<TypeClass, Record<ComparatorGroup, Allowance>> = {
  Boolean: row(Y, N, N, N, Y, N, Y),
  Integer: row(Y, Y, N, N, Y, N, Y),
  Number: row(Y, Y, N, N, Y, N, Y),
  String: row(Y, N, O, Y, Y, N, Y),
  Date: row(Y, Y, N, N, Y, N, Y),
  DateTime: row(Y, Y, N, N, Y, N, Y),
  Uuid: row(Y, N, N, N, Y, N, Y),
  Enum: row(Y, N, N, N, Y, N, Y),
  ArrayScalar: row(N, N, N, Y, N, O, Y),
  ArrayComplex: row(N, N, N, N, N, O, Y),
  Object: row(N, N, N, N, N, O, Y),
  Null: row(Y, N, N, N, N, N, Y),
  Dynamic: row(Y, Y, Y, Y, Y, Y, Y),
};

function row(
  equality: Allowance,
  ordering: Allowance,
  lexicographic: Allowance,
  contains: Allowance,
  inSet: Allowance,
  deep: Allowance,
  presence: Allowance,
): Record<ComparatorGroup, Allowance> {
  return { equality, ordering, lexicographic, contains, in_set: inSet, deep, presence };
}

export function allowanceFor(typeClass: TypeClass, comparator: Comparator): Allowance {
  return MATRIX[typeClass][GROUP_OF[comparator]];
}

/** The most restrictive allowance over all classes (forbidden, then opt-in, then allowed). */
export function combinedAllowance(typeClasses: readonly TypeClass[], comparator: Comparator): Allowance {
  const allowances = typeClasses.map((typeClass) => allowanceFor(typeClass, comparator));
  if (allowances.includes("forbidden")) return "forbidden";
  return allowances.includes("opt_in") ? "opt_in" : "allowed";
}

// ---------------------------------------------------------------------------------------------------------------
// Type classes of a schema.

/**
 * The type classes whose allowances are intersected for `schema`: one class for a plain schema, several for a
 * type array or a oneOf/anyOf union (null-only members are dropped unless nothing else is left). Throws a
 * `StrictValidationError` when the schema cannot be classified.
 */
export function deriveTypeClasses(schema: JsonValue): TypeClass[] {
  const union = unionVariants(schema);
  if (union === undefined) return ownTypeClasses(schema);
  const variants = withoutNullOnlyVariants(union);
  if (variants.length === 0) throw new StrictValidationError("schema union must have at least one option");
  return variants.flatMap(deriveTypeClasses);
}

/** `oneOf` wins over `anyOf`; anything but an array is not a union. */
function unionVariants(schema: JsonValue): JsonValue[] | undefined {
  const oneOf = member(schema, "oneOf");
  if (Array.isArray(oneOf)) return oneOf;
  const anyOf = member(schema, "anyOf");
  return Array.isArray(anyOf) ? anyOf : undefined;
}

function withoutNullOnlyVariants(variants: JsonValue[]): JsonValue[] {
  const nonNull = variants.filter((variant) => !isNullOnly(variant));
  return nonNull.length > 0 ? nonNull : variants;
}

function isNullOnly(schema: JsonValue): boolean {
  const values = member(schema, "enum");
  if (Array.isArray(values)) {
    if (values.length === 0) throw new StrictValidationError("enum must contain at least one value");
    return values.every((value) => value === null);
  }
  const type = member(schema, "type");
  if (type === undefined) return false;
  const kinds = typeNames(type);
  return kinds.includes("null") && kinds.every((kind) => kind === "null");
}

function ownTypeClasses(schema: JsonValue): TypeClass[] {
  if (isDynamic(schema)) return ["Dynamic"];
  const values = member(schema, "enum");
  if (Array.isArray(values)) return [enumTypeClass(values)];
  const type = member(schema, "type");
  if (type === undefined) throw new StrictValidationError("schema missing type declaration");
  if (typeof type === "string") return [typeClassOf(type, schema)];
  const classes = typeNames(type).map((kind) => typeClassOf(kind, schema));
  if (classes.length === 0) throw new StrictValidationError("schema type array must not be empty");
  const nonNull = classes.filter((typeClass) => typeClass !== "Null");
  return nonNull.length > 0 ? nonNull : ["Null"];
}

function isDynamic(schema: JsonValue): boolean {
  const meta = decisionGateMeta(schema);
  const dynamic = meta?.dynamic_type;
  if (dynamic === undefined) return false;
  if (typeof dynamic !== "boolean") throw new StrictValidationError("x-decision-gate.dynamic_type must be boolean");
  return dynamic;
}

function enumTypeClass(values: JsonValue[]): TypeClass {
  if (values.length === 0) throw new StrictValidationError("enum must contain at least one value");
  const kinds = new Set(values.map(jsonKind));
  if (kinds.has("array") || kinds.has("object")) throw new StrictValidationError("enum values must be scalar types");
  if (kinds.size > 1) throw new StrictValidationError("enum values must share the same scalar type");
  return kinds.has("null") ? "Null" : "Enum";
}

function typeNames(type: JsonValue): string[] {
  if (typeof type === "string") return [type];
  if (!Array.isArray(type)) throw new StrictValidationError("schema type must be string or array");
  return type.map((kind) => {
    if (typeof kind !== "string") throw new StrictValidationError("schema type array must contain strings");
    return kind;
  });
}

function typeClassOf(kind: string, schema: JsonValue): TypeClass {
  switch (kind) {
    case "boolean":
      return "Boolean";
    case "integer":
      return "Integer";
    case "number":
      return "Number";
    case "string":
      return stringTypeClass(member(schema, "format"));
    case "array":
      return arrayTypeClass(member(schema, "items"));
    case "object":
      return "Object";
    case "null":
      return "Null";
    default:
      throw new StrictValidationError(`unsupported schema type: ${kind}`);
  }
}

function stringTypeClass(format: JsonValue | undefined): TypeClass {
  if (format === "date-time") return "DateTime";
  if (format === "date") return "Date";
  return format === "uuid" ? "Uuid" : "String";
}

const SCALAR_CLASSES: ReadonlySet<TypeClass> = new Set([
  "Boolean",
  "Integer",
  "Number",
  "String",
  "Enum",
  "Date",
  "DateTime",
  "Uuid",
  "Null",
]);

/** Items that cannot be classified make the array complex rather than failing the schema. */
function arrayTypeClass(items: JsonValue | undefined): TypeClass {
  if (items === undefined) return "ArrayComplex";
  try {
    return ownTypeClasses(items).every((typeClass) => SCALAR_CLASSES.has(typeClass)) ? "ArrayScalar" : "ArrayComplex";
  } catch (error) {
    if (error instanceof StrictValidationError) return "ArrayComplex";
    throw error;
  }
}

function jsonKind(value: JsonValue): string {
  if (value === null) return "null";
  if (Array.isArray(value) || value instanceof Uint8Array) return "array";
  if (typeof value === "bigint") return "number";
  return typeof value === "object" ? "object" : typeof value;
}

function member(schema: JsonValue, key: string): JsonValue | undefined {
  return isJsonObject(schema) ? schema[key] : undefined;
}

function decisionGateMeta(schema: JsonValue): JsonObject | undefined {
  const meta = member(schema, "x-decision-gate");
  if (meta === undefined) return undefined;
  if (!isJsonObject(meta)) throw new StrictValidationError("x-decision-gate must be an object");
  return meta;
}

/** `x-decision-gate.allowed_comparators`, when the schema lists one. */
function listedComparators(schema: JsonValue): Comparator[] | undefined {
  const listed = decisionGateMeta(schema)?.allowed_comparators;
  if (listed === undefined) return undefined;
  const isComparator = (value: JsonValue) => (COMPARATORS as readonly JsonValue[]).includes(value);
  if (!Array.isArray(listed) || !listed.every(isComparator)) {
    throw new StrictValidationError("allowed_comparators invalid: expected an array of comparator names");
  }
  if (listed.length === 0) throw new StrictValidationError("allowed_comparators must not be empty");
  return listed as Comparator[];
}

// ---------------------------------------------------------------------------------------------------------------
// Validation.

/** What the strict validator reads of a condition; `expected === null` means no expected value. */
export interface StrictCondition {
  readonly condition_id: string;
  readonly comparator: Comparator;
  readonly expected: JsonValue | null;
}

/**
 * Checks one condition's comparator and expected value against a result (or data-shape) schema, in the
 * reference's order: the schema's `allowed_comparators` and type classes, config gates, the type matrix, opt-ins,
 * then the expected value. `source` names the schema in the message's detail.
 */
export function validateConditionSchema(
  condition: StrictCondition,
  schema: JsonValue,
  options: StrictOptions,
  source: string,
): void {
  const { condition_id: conditionId, comparator } = condition;
  const schemaLevel = <T>(step: () => T): T => {
    try {
      return step();
    } catch (error) {
      if (error instanceof StrictValidationError) throw error.withNote(`condition ${conditionId}, ${source}`);
      throw error;
    }
  };
  const listed = schemaLevel(() => listedComparators(schema));
  const typeClasses = schemaLevel(() => deriveTypeClasses(schema));
  const typeNote = `${describeTypeClasses(typeClasses)} in ${source}`;
  if (listed !== undefined) schemaLevel(() => checkListedComparators(listed, typeClasses, options));
  const subject = `condition ${conditionId} comparator ${comparator}`;
  const disabledBy = disablingSetting(comparator, options);
  if (disabledBy !== undefined)
    throw new StrictValidationError(`${subject} is disabled by config`, [`${disabledBy}=false`]);
  const allowance = combinedAllowance(typeClasses, comparator);
  if (allowance === "forbidden") throw new StrictValidationError(`${subject} not allowed for schema type`, [typeNote]);
  if (allowance === "opt_in" && listed === undefined) {
    throw new StrictValidationError(`${subject} requires explicit opt-in`, [
      typeNote,
      "list it in x-decision-gate.allowed_comparators",
    ]);
  }
  if (listed !== undefined && !listed.includes(comparator)) {
    throw new StrictValidationError(`${subject} not in allowed_comparators`, [source]);
  }
  const validate = schemaLevel(() => compiledSchema(schema));
  checkExpected(condition, validate, typeNote);
}

/** Engine §1.4 step 5: every condition in spec order against its check's result schema; the first violation is thrown. */
export function validateSpecStrict(spec: ScenarioSpec, registry: CapabilityRegistry, options: StrictOptions): void {
  for (const condition of spec.conditions) {
    const { provider_id: providerId, check_id: checkId } = condition.query;
    const check = registry.checkOf(providerId, checkId);
    validateConditionSchema(condition, check.contract.result_schema, options, `${providerId}.${checkId} result schema`);
  }
}

/**
 * Precheck's strict validation against a data shape (evidence §5.5): each condition against its own part of every
 * variant of the shape (its property, else typed `additionalProperties`; a non-object shape only for a lone
 * condition).
 */
export function validatePrecheckStrict(spec: ScenarioSpec, dataShape: JsonValue, options: StrictOptions): void {
  const variants = dataShapeVariants(dataShape);
  for (const condition of spec.conditions) {
    const schemas = variants.map((variant) => conditionSchema(condition.condition_id, spec.conditions.length, variant));
    for (const schema of schemas) validateConditionSchema(condition, schema, options, "data shape");
  }
}

/** The variants of a data shape: its `oneOf` or `anyOf` members without the null-only ones, or the shape itself. */
function dataShapeVariants(schema: JsonValue): JsonValue[] {
  const oneOf = member(schema, "oneOf");
  const anyOf = member(schema, "anyOf");
  if (oneOf !== undefined && anyOf !== undefined) {
    throw new StrictValidationError("schema cannot define both oneOf and anyOf");
  }
  for (const [keyword, variants] of [
    ["oneOf", oneOf],
    ["anyOf", anyOf],
  ] as const) {
    if (!Array.isArray(variants)) continue;
    if (variants.length === 0) throw new StrictValidationError(`schema ${keyword} must contain at least one option`);
    return withoutNullOnlyVariants(variants);
  }
  return [schema];
}

/** The part of a data-shape variant that describes one condition's asserted value. */
function conditionSchema(conditionId: string, conditionCount: number, schema: JsonValue): JsonValue {
  if (isObjectSchema(schema)) {
    const properties = member(schema, "properties");
    const own = isJsonObject(properties) ? properties[conditionId] : undefined;
    if (own !== undefined) return own;
    const additional = member(schema, "additionalProperties");
    if (isJsonObject(additional)) return additional;
    if (additional === true) {
      throw new StrictValidationError(`schema allows untyped additionalProperties for condition ${conditionId}`);
    }
    throw new StrictValidationError(`condition ${conditionId} missing from data shape schema`);
  }
  if (conditionCount === 1) return schema;
  throw new StrictValidationError("non-object data shape requires exactly one condition");
}

function isObjectSchema(schema: JsonValue): boolean {
  const type = member(schema, "type");
  if (typeof type === "string") return type === "object";
  if (Array.isArray(type)) return type.includes("object");
  return member(schema, "properties") !== undefined;
}

function checkListedComparators(
  listed: readonly Comparator[],
  typeClasses: readonly TypeClass[],
  options: StrictOptions,
): void {
  for (const comparator of listed) {
    const disabledBy = disablingSetting(comparator, options);
    if (disabledBy !== undefined) {
      throw new StrictValidationError(`allowed_comparators includes disabled comparator ${comparator}`, [
        `${disabledBy}=false`,
      ]);
    }
    if (combinedAllowance(typeClasses, comparator) === "forbidden") {
      throw new StrictValidationError(`allowed_comparators includes comparator ${comparator} not valid for schema`, [
        describeTypeClasses(typeClasses),
      ]);
    }
  }
}

/** The config setting that turns `comparator` off, when it is off. */
function disablingSetting(comparator: Comparator, options: StrictOptions): string | undefined {
  const group = GROUP_OF[comparator];
  if (group === "lexicographic" && !options.enableLexicographic) return "validation.enable_lexicographic";
  if (group === "deep" && !options.enableDeepEquals) return "validation.enable_deep_equals";
  return undefined;
}

function compiledSchema(schema: JsonValue): SchemaValidator {
  try {
    return compileJsonSchema(schema);
  } catch (error) {
    throw new StrictValidationError(`invalid schema: ${messageOf(error)}`);
  }
}

/**
 * The expected value must fit the comparator and the schema. A JSON `null` expected value reads as none (as with
 * the reference's decoding), so the reference's "does not accept null expected values" cannot arise: such a
 * condition is reported as requiring an expected value.
 */
function checkExpected(condition: StrictCondition, validate: SchemaValidator, typeNote: string): void {
  const { condition_id: conditionId, comparator, expected } = condition;
  const subject = `condition ${conditionId} comparator ${comparator}`;
  const invalid = (problem: string, notes: string[]) =>
    new StrictValidationError(`condition ${conditionId} expected value invalid: ${problem}`, notes);
  if (GROUP_OF[comparator] === "presence") {
    if (expected !== null) throw new StrictValidationError(`${subject} does not accept expected values`);
    return;
  }
  if (comparator === "in_set") {
    if (!Array.isArray(expected)) throw new StrictValidationError(`${subject} requires expected array`);
    expected.forEach((element, index) => {
      const problem = validate(element);
      if (problem !== undefined) throw invalid(problem, [`in_set element ${index}`, typeNote]);
    });
    return;
  }
  if (expected === null) throw new StrictValidationError(`${subject} requires expected value`);
  const problem = validate(expected);
  if (problem !== undefined) throw invalid(problem, [typeNote]);
}

function describeTypeClasses(typeClasses: readonly TypeClass[]): string {
  const unique = [...new Set(typeClasses)];
  return unique.length === 1 ? `type class ${unique[0]}` : `type classes ${unique.join(" & ")}`;
}
