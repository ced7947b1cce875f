import { z } from "zod";
import { type JsonValue, toPlainJson } from "../../json/value.js";

/*
 * JSON Schemas (draft 2020-12) derived from zod schemas, so that one zod schema per wire or configuration type is
 * the single source of validation and of the published schema. Used for `decision-gate.toml` and for this
 * project's own tools' input schemas.
 */

export type JsonSchemaNode = { [keyword: string]: unknown };

/**
 * The JSON Schema of `schema` as a plain, freely editable tree (a JSON round trip gives every occurrence of a shared
 * sub-schema its own node). `io: "input"` describes what may be sent (defaults make keys optional); `bigint`s are
 * `integer`s with the bounds a JSON number can state exactly.
 */
export function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): JsonSchemaNode {
  const options = {
    target: "draft-2020-12",
    io,
    unrepresentable: representUnrepresentable,
    override: addDefault,
  } as const satisfies Parameters<typeof z.toJSONSchema>[1];
  return JSON.parse(JSON.stringify(z.toJSONSchema(schema, options))) as JsonSchemaNode;
}

function representUnrepresentable(context: { zodSchema: z.core.$ZodType }): JsonSchemaNode | "any" {
  const def = context.zodSchema._zod.def;
  if (def.type !== "bigint") return "any";
  const node: JsonSchemaNode = { type: "integer" };
  for (const check of def.checks ?? []) {
    const { check: kind, value } = check._zod.def as { check: string; value?: unknown };
    if (typeof value !== "bigint" || value >= BigInt(Number.MAX_SAFE_INTEGER)) continue;
    if (kind === "greater_than") node.minimum = Number(value);
    if (kind === "less_than") node.maximum = Number(value);
  }
  return node;
}

/** zod leaves out defaults it cannot express on the input side (defaults of transformed values, bigints). */
function addDefault(context: { zodSchema: z.core.$ZodType; jsonSchema: JsonSchemaNode }): void {
  const def = context.zodSchema._zod.def as { type: string; defaultValue?: unknown };
  if ((def.type === "default" || def.type === "prefault") && context.jsonSchema.default === undefined) {
    context.jsonSchema.default = toPlainJson(def.defaultValue as JsonValue);
  }
}

/** Keywords whose values are data, not schemas. */
const VALUE_KEYWORDS = new Set(["default", "const", "enum", "examples"]);

/**
 * Closes every object with declared properties (`additionalProperties: false`) that does not say otherwise, so
 * that editors and clients flag misspelled keys. (zod drops unknown keys rather than refusing them.)
 */
export function closeObjects(node: JsonSchemaNode): void {
  if (node.type === "object" && node.properties !== undefined && node.additionalProperties === undefined) {
    node.additionalProperties = false;
  }
  for (const [keyword, value] of Object.entries(node)) {
    if (VALUE_KEYWORDS.has(keyword)) continue;
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) {
      const childNode = asNode(child);
      if (childNode !== undefined) closeObjects(childNode);
    }
  }
}

export function unionOptions(node: JsonSchemaNode): JsonSchemaNode[] {
  const options = [node.anyOf, node.oneOf].flatMap((list) => (Array.isArray(list) ? list : []));
  return options.map(asNode).filter((option) => option !== undefined);
}

export function asNode(value: unknown): JsonSchemaNode | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as JsonSchemaNode) : undefined;
}
