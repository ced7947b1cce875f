import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { presetsDirectory } from "../../config/presets.js";
import { asNode, type JsonSchemaNode, unionOptions } from "../../core/wire/json-schema.js";
import { type ToolDefinition, toolDefinitions } from "./catalog.js";

/*
 * Renders docs/TOOLS.md, the tool reference, from the tool catalog (the definitions `tools/list` serves, in its
 * order): each tool's description and the top-level fields of its input and output JSON Schemas. Run
 * `npm run docs:tools` after changing a tool's contract; a test fails while the file is stale.
 */

export function toolDocsPath(): string {
  return join(dirname(presetsDirectory()), "docs", "TOOLS.md");
}

export function renderToolDocs(): string {
  const tools = toolDefinitions();
  return [introduction(tools), ...tools.map(renderTool)].join("\n").replace(/\n{3,}/g, "\n\n");
}

function introduction(tools: readonly ToolDefinition[]): string {
  return `# Tool reference

<!-- Generated from the tool catalog (src/server/tools/catalog.ts) by \`npm run docs:tools\`; do not edit by hand. -->

Decision Gate serves ${tools.length} MCP tools, listed here in the order \`tools/list\` returns them. Each section gives
the tool's description and the top-level fields of its arguments and of its result; nested objects and arrays are
summarized by type. The full JSON Schemas (\`inputSchema\`, \`outputSchema\`) and the tool annotations are returned
by \`tools/list\`.

${tools.map((tool) => `- [\`${tool.name}\`](#${tool.name})`).join("\n")}
`;
}

function renderTool(tool: ToolDefinition): string {
  return [
    `## ${tool.name}`,
    "",
    tool.description,
    "",
    "### Input",
    "",
    renderFields(tool.inputSchema, "Required", "No arguments."),
    "### Output",
    "",
    renderFields(tool.outputSchema, "Always present", "No fields."),
  ].join("\n");
}

function renderFields(schema: JsonSchemaNode, requiredLabel: string, whenEmpty: string): string {
  const properties = propertiesOf(schema);
  if (properties.length === 0) return `${whenEmpty}\n`;
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  return [
    `| Field | Type | ${requiredLabel} | Description |`,
    "|---|---|---|---|",
    ...properties.map(([key, node]) => renderRow(key, node, required.has(key))),
    "",
  ].join("\n");
}

function renderRow(key: string, node: JsonSchemaNode, required: boolean): string {
  return `| \`${key}\` | ${cell(typeText(node))} | ${required ? "yes" : "no"} | ${cell(describe(node) ?? "")} |`;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function propertiesOf(node: JsonSchemaNode): Array<readonly [string, JsonSchemaNode]> {
  return Object.entries(asNode(node.properties) ?? {}).flatMap(([key, value]) => {
    const child = asNode(value);
    return child === undefined ? [] : [[key, child] as const];
  });
}

/** The node's description, else the first one among its union options (`oneOf: [null, {description}]`). */
function describe(node: JsonSchemaNode): string | null {
  if (typeof node.description === "string") return node.description;
  for (const option of unionOptions(node)) {
    const text = describe(option);
    if (text !== null) return text;
  }
  return null;
}

const ANY_JSON_TYPES = ["null", "boolean", "number", "string", "array", "object"];

function typeText(node: JsonSchemaNode): string {
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (Array.isArray(node.enum)) return enumText(node.enum);
  if (typeof node.$ref === "string") return refText(node.$ref);
  const options = unionOptions(node);
  if (options.length > 0) return orderNullLast([...new Set(options.map(typeText))]).join(" or ");
  if (Array.isArray(node.type)) {
    const types = node.type.filter((type): type is string => typeof type === "string");
    if (ANY_JSON_TYPES.every((type) => types.includes(type))) return "any JSON";
    return orderNullLast(types.map((type) => singleTypeText(node, type))).join(" or ");
  }
  return typeof node.type === "string" ? singleTypeText(node, node.type) : "any JSON";
}

function singleTypeText(node: JsonSchemaNode, type: string): string {
  switch (type) {
    case "integer":
      return `integer${rangeText(node.minimum, node.maximum)}`;
    case "array": {
      const items = asNode(node.items);
      return items === undefined ? "array" : `array of ${arrayItemText(items)}`;
    }
    default:
      return type;
  }
}

function arrayItemText(items: JsonSchemaNode): string {
  const text = typeText(items);
  return text.includes(" | ") || text.includes(" or ") ? `(${text})` : text;
}

function refText(ref: string): string {
  return ref.endsWith("scenario.schema.json") ? "object (ScenarioSpec)" : "object";
}

function enumText(values: readonly unknown[]): string {
  return values.map((value) => `\`${JSON.stringify(value)}\``).join(" | ");
}

function orderNullLast(types: string[]): string[] {
  return [...types.filter((type) => type !== "null"), ...types.filter((type) => type === "null")];
}

function rangeText(minimum: unknown, maximum: unknown): string {
  if (typeof minimum === "number" && typeof maximum === "number") return ` ${minimum}..=${maximum}`;
  if (typeof minimum === "number") return ` ≥ ${minimum}`;
  if (typeof maximum === "number") return ` ≤ ${maximum}`;
  return "";
}

async function main(): Promise<void> {
  const path = toolDocsPath();
  await writeFile(path, renderToolDocs());
  process.stdout.write(`wrote ${path}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
