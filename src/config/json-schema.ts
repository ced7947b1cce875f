import { asNode, closeObjects, type JsonSchemaNode, jsonSchemaOf, unionOptions } from "../core/wire/json-schema.js";
import { DecisionGateConfig, OPEN_FIELD_SCHEMAS, REUSED_KEY_DESCRIPTIONS } from "./schema.js";

/*
 * The JSON Schema (draft 2020-12) of `decision-gate.toml`, derived from the zod schema: what a TOML file may
 * contain (the input side), with defaults, ranges and descriptions. Cross-field rules (e.g. `bind` required for
 * HTTP) are enforced by the loader only. Objects are closed (`additionalProperties: false`) so editors flag
 * typos, as the loader's unknown-key warnings do; `client` and builtin provider `config` tables stay open.
 */

export function configJsonSchema(): JsonSchemaNode {
  const { $schema, ...schema } = jsonSchemaOf(DecisionGateConfig, "input");
  visitKeys(schema, "", embedOpenField);
  visitKeys(schema, "", describeReusedKey);
  closeObjects(schema);
  return { $schema, title: "Decision Gate configuration (decision-gate.toml)", ...schema };
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

function embedOpenField(node: JsonSchemaNode, path: string): void {
  const schema = OPEN_FIELD_SCHEMAS[path];
  if (schema === undefined) return;
  const { $schema: _ignored, ...embedded } = jsonSchemaOf(schema, "input");
  Object.assign(node, embedded);
}

function describeReusedKey(node: JsonSchemaNode, path: string): void {
  const description = REUSED_KEY_DESCRIPTIONS[path];
  if (description !== undefined && node.description === undefined) node.description = description;
}
