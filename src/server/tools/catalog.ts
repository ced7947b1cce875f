import { InternalError } from "../../core/errors.js";
import { closeObjects, type JsonSchemaNode, jsonSchemaOf } from "../../core/wire/json-schema.js";
import scenarioSchema from "../contract/schemas/scenario.schema.json" with { type: "json" };
import tooling from "../contract/tooling.json" with { type: "json" };
import { ACTION_TOOLS } from "./actions.js";
import { DOCS_TOOLS } from "./docs-search.js";
import { EVIDENCE_TOOLS } from "./evidence.js";
import { PRECHECK_TOOLS } from "./precheck.js";
import { RUNPACK_TOOLS } from "./runpack.js";
import { SCENARIO_TOOLS } from "./scenario.js";
import { SCHEMA_TOOLS } from "./schemas.js";
import type { Tool, ToolHints } from "./tool.js";

/*
 * The tool table: every tool's record, served under the contract the reference publishes for it
 * (src/server/contract/tooling.json: name, description, input and output schemas, in its canonical order), then
 * this project's own tools under the contracts their records bring. The records and tooling.json must name the
 * same tools; the server does not start otherwise. Everything else that lists tools (configuration checks,
 * metrics labels, docs/TOOLS.md) reads this table.
 */

const TOOLS: readonly Tool[] = [
  ...SCENARIO_TOOLS,
  ...EVIDENCE_TOOLS,
  ...RUNPACK_TOOLS,
  ...SCHEMA_TOOLS,
  ...PRECHECK_TOOLS,
  ...DOCS_TOOLS,
  ...ACTION_TOOLS,
];

export interface ToolAnnotations extends ToolHints {
  title: string;
}

/** A tool as `tools/list` describes it. */
export interface ToolDefinition {
  name: string;
  description: string;
  inputSchema: JsonSchemaNode;
  outputSchema: JsonSchemaNode;
  annotations: ToolAnnotations;
}

export interface CatalogEntry {
  tool: Tool;
  definition: ToolDefinition;
}

/** One tool of the reference's tooling.json (its `examples` and `notes` are not served). */
export interface ReferenceContract {
  name: string;
  description: string;
  input_schema: JsonSchemaNode;
  output_schema: JsonSchemaNode;
}

/**
 * Pairs every record with its contract: the reference's tools in the reference's order, then the records that
 * bring their own. Throws when a reference tool has no record, a record has no contract, or a record restates
 * the reference's contract.
 */
export function buildCatalog(tools: readonly Tool[], reference: readonly ReferenceContract[]): CatalogEntry[] {
  const records = new Map(tools.map((tool) => [tool.name, tool]));
  const published = new Set(reference.map((contract) => contract.name));
  const problems = [
    ...tools.filter((tool) => records.get(tool.name) !== tool).map((tool) => `${tool.name}: two records`),
    ...reference.filter((contract) => !records.has(contract.name)).map((contract) => `${contract.name}: no record`),
    ...tools
      .filter((tool) => published.has(tool.name) === (tool.contract !== undefined))
      .map((tool) => `${tool.name}: ${tool.contract === undefined ? "no contract" : "restates the reference"}`),
  ];
  if (problems.length > 0) throw new InternalError(`tool records and tooling.json disagree: ${problems.join("; ")}`);
  const referenceEntries = reference.map((contract) => {
    const tool = records.get(contract.name) as Tool;
    return entryOf(tool, contract.description, contract.input_schema, contract.output_schema);
  });
  const ownEntries = tools.flatMap((tool) =>
    tool.contract === undefined
      ? []
      : [entryOf(tool, tool.contract.description, ownInputSchema(tool), tool.contract.outputSchema)],
  );
  return [...referenceEntries, ...ownEntries];
}

function entryOf(tool: Tool, description: string, inputSchema: JsonSchemaNode, output: JsonSchemaNode): CatalogEntry {
  return {
    tool,
    definition: {
      name: tool.name,
      description,
      inputSchema,
      outputSchema: tool.attachesAction === true ? withActionProperty(output) : output,
      annotations: {
        title: titleOf(tool.name),
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: false,
        ...tool.annotations,
      },
    },
  };
}

/** This project's tools describe their arguments by their zod schema alone. */
function ownInputSchema(tool: Tool): JsonSchemaNode {
  const schema = jsonSchemaOf(tool.args, "input");
  closeObjects(schema);
  return schema;
}

function titleOf(name: string): string {
  return name
    .split("_")
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(" ");
}

const ACTION_PROPERTY: JsonSchemaNode = {
  type: "object",
  description:
    "The runtime action receipt of the decision (continue, isolate_and_continue or terminate, with capabilities), " +
    "chained per run. Present when the runtime action layer is enabled.",
};

function withActionProperty(schema: JsonSchemaNode): JsonSchemaNode {
  return { ...schema, properties: { ...(schema.properties as JsonSchemaNode), action: ACTION_PROPERTY } };
}

const CATALOG: readonly CatalogEntry[] = buildCatalog(TOOLS, tooling as ReferenceContract[]);
const ENTRIES: ReadonlyMap<string, CatalogEntry> = new Map(CATALOG.map((entry) => [entry.tool.name, entry]));
const DEFINITIONS: readonly ToolDefinition[] = CATALOG.map((entry) => entry.definition);
const NAMES: readonly string[] = CATALOG.map((entry) => entry.tool.name);

/** Every tool with its definition, in `tools/list` order. */
export function catalogEntries(): readonly CatalogEntry[] {
  return CATALOG;
}

export function catalogEntry(name: string): CatalogEntry | undefined {
  return ENTRIES.get(name);
}

/** Every tool's definition: the reference's, in its canonical order, then this project's own. */
export function toolDefinitions(): readonly ToolDefinition[] {
  return DEFINITIONS;
}

/** Every tool's name, in `tools/list` order. */
export function toolNames(): readonly string[] {
  return NAMES;
}

const SCENARIO_SCHEMA_ID = "decision-gate://contract/schemas/scenario.schema.json";

/**
 * The input schema with the scenario schema inlined for standard MCP clients, which do not resolve external
 * `$ref`s: its `$defs` move to the root and the reference points at `#/$defs/ScenarioSpec`.
 */
export function selfContainedSchema(schema: JsonSchemaNode): JsonSchemaNode {
  const text = JSON.stringify(schema);
  if (!text.includes(SCENARIO_SCHEMA_ID)) return schema;
  const { $defs, $id: _id, $schema: _schema, ...scenario } = scenarioSchema as JsonSchemaNode;
  const inlined = JSON.parse(text.replaceAll(SCENARIO_SCHEMA_ID, "#/$defs/ScenarioSpec")) as JsonSchemaNode;
  return { ...inlined, $defs: { ...($defs as JsonSchemaNode), ScenarioSpec: scenario } };
}
