import { z } from "zod";
import { type JsonValue, toPlainJson } from "../json/value.js";
import { DecisionGateConfig, OPEN_FIELD_SCHEMAS, REUSED_KEY_DESCRIPTIONS } from "./schema.js";

/*
 * The JSON Schema (draft 2020-12) of `decision-gate.toml`, derived from the zod schema: what a TOML file may
 * contain (the input side), with defaults, ranges and descriptions. Cross-field rules (e.g. `bind` required for
 * HTTP) are enforced by the loader only. Objects are closed (`additionalProperties: false`) so editors flag
 * typos, as the loader's unknown-key warnings do; `client` and builtin provider `config` tables stay open.
 */

export type JsonSchemaNode = { [keyword: string]: unknown };

const GENERATOR_OPTIONS = {
  target: "draft-2020-12",
  io: "input",
  unrepresentable: representUnrepresentable,
  override: addDefault,
} as const satisfies Parameters<typeof z.toJSONSchema>[1];

export function configJsonSchema(): JsonSchemaNode {
  const { $schema, ...schema } = generate(DecisionGateConfig);
  visitKeys(schema, "", embedOpenField);
  visitKeys(schema, "", describeReusedKey);
  closeObjects(schema);
  return { $schema, title: "Decision Gate configuration (decision-gate.toml)", ...schema };
}

function generate(schema: z.ZodType): JsonSchemaNode {
  // A JSON round trip gives every occurrence of a shared sub-schema its own node, so nodes can be edited by path.
  return JSON.parse(JSON.stringify(z.toJSONSchema(schema, GENERATOR_OPTIONS))) as JsonSchemaNode;
}

/** TOML integers are `bigint` in the schema: `integer`, with the bounds a JSON number can state exactly. */
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

/**
 * Calls `visitor` on every node that describes a key, with the key's dotted path (`[]` for array items). The
 * options of a union (`trust.default_policy`, `runpack_storage`) are not keys themselves; their keys are.
 */
export function visitKeys(
  node: JsonSchemaNode,
  path: string,
  visitor: (node: JsonSchemaNode, path: string) => void,
): void {
  visitor(node, path);
  visitChildKeys(node, path, visitor);
}

function visitChildKeys(node: JsonSchemaNode, path: string, visitor: (node: JsonSchemaNode, path: string) => void) {
  for (const [key, child] of Object.entries(asNode(node.properties) ?? {})) {
    const childNode = asNode(child);
    if (childNode !== undefined) visitKeys(childNode, path === "" ? key : `${path}.${key}`, visitor);
  }
  const items = asNode(node.items);
  if (items !== undefined) visitKeys(items, `${path}[]`, visitor);
  for (const option of unionOptions(node)) visitChildKeys(option, path, visitor);
}

export function unionOptions(node: JsonSchemaNode): JsonSchemaNode[] {
  const options = [node.anyOf, node.oneOf].flatMap((list) => (Array.isArray(list) ? list : []));
  return options.map(asNode).filter((option) => option !== undefined);
}

export function asNode(value: unknown): JsonSchemaNode | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as JsonSchemaNode) : undefined;
}

function embedOpenField(node: JsonSchemaNode, path: string): void {
  const schema = OPEN_FIELD_SCHEMAS[path];
  if (schema === undefined) return;
  const { $schema: _ignored, ...embedded } = generate(schema);
  Object.assign(node, embedded);
}

/** Keywords whose values are data, not schemas. */
const VALUE_KEYWORDS = new Set(["default", "const", "enum", "examples"]);

function closeObjects(node: JsonSchemaNode): void {
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

function describeReusedKey(node: JsonSchemaNode, path: string): void {
  const description = REUSED_KEY_DESCRIPTIONS[path];
  if (description !== undefined && node.description === undefined) node.description = description;
}
