import scenarioSchema from "../contract/schemas/scenario.schema.json" with { type: "json" };
import tooling from "../contract/tooling.json" with { type: "json" };
import { RUNTIME_ACTION_TOOL } from "./actions.js";

/*
 * The tool contracts served to clients: names, descriptions and schemas exactly as the reference publishes them
 * (src/server/contract/tooling.json), in its canonical order.
 */

type JsonSchema = Record<string, unknown>;

export interface ToolAnnotations {
  title: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ToolDefinition {
  name: string;
  description: string;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  annotations: ToolAnnotations;
}

const READ_ONLY = new Set([
  "scenario_status",
  "scenarios_list",
  "schemas_get",
  "schemas_list",
  "providers_list",
  "provider_contract_get",
  "provider_check_schema_get",
  "runpack_verify",
  "precheck",
  "decision_gate_docs_search",
]);
/** Content-addressed: defining the same thing twice changes nothing. */
const IDEMPOTENT = new Set(["scenario_define", "schemas_register"]);
/** Reaches outside the server (providers over HTTP or MCP). */
const OPEN_WORLD = new Set(["evidence_query", "scenario_next", "scenario_trigger"]);

function annotationsOf(name: string): ToolAnnotations {
  const readOnly = READ_ONLY.has(name);
  return {
    title: name
      .split("_")
      .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
      .join(" "),
    readOnlyHint: readOnly,
    destructiveHint: false,
    idempotentHint: readOnly || IDEMPOTENT.has(name),
    openWorldHint: OPEN_WORLD.has(name),
  };
}

/** Tools whose results carry the decision's action receipt (spec §6) beside the reference's fields. */
const WITH_ACTION = new Set(["scenario_next", "scenario_trigger"]);
const ACTION_PROPERTY: JsonSchema = {
  type: "object",
  description:
    "The runtime action receipt of the decision (continue, isolate_and_continue or terminate, with capabilities), " +
    "chained per run. Present when the runtime action layer is enabled.",
};

function outputSchemaOf(name: string, schema: JsonSchema): JsonSchema {
  if (!WITH_ACTION.has(name)) return schema;
  return { ...schema, properties: { ...(schema.properties as JsonSchema), action: ACTION_PROPERTY } };
}

const DEFINITIONS: readonly ToolDefinition[] = (tooling as Array<Record<string, unknown>>).map((tool) => ({
  name: tool.name as string,
  description: tool.description as string,
  inputSchema: tool.input_schema as JsonSchema,
  outputSchema: outputSchemaOf(tool.name as string, tool.output_schema as JsonSchema),
  annotations: annotationsOf(tool.name as string),
}));

const ALL_DEFINITIONS: readonly ToolDefinition[] = [...DEFINITIONS, RUNTIME_ACTION_TOOL];

/** Every tool: the reference's, in its canonical order, then this project's own (`runtime_action_evaluate`). */
export function toolDefinitions(): readonly ToolDefinition[] {
  return ALL_DEFINITIONS;
}

const SCENARIO_SCHEMA_ID = "decision-gate://contract/schemas/scenario.schema.json";

/**
 * The input schema with the scenario schema inlined for standard MCP clients, which do not resolve external
 * `$ref`s: its `$defs` move to the root and the reference points at `#/$defs/ScenarioSpec`.
 */
export function selfContainedSchema(schema: JsonSchema): JsonSchema {
  const text = JSON.stringify(schema);
  if (!text.includes(SCENARIO_SCHEMA_ID)) return schema;
  const { $defs, $id: _id, $schema: _schema, ...scenario } = scenarioSchema as JsonSchema;
  const inlined = JSON.parse(text.replaceAll(SCENARIO_SCHEMA_ID, "#/$defs/ScenarioSpec")) as JsonSchema;
  return { ...inlined, $defs: { ...($defs as JsonSchema), ScenarioSpec: scenario } };
}
