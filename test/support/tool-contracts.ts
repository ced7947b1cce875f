import type { McpClient } from "../../src/cli/client.js";
import { compileJsonSchema, type SchemaValidator } from "../../src/evidence/contracts/load.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../../src/json/value.js";
import { readSharedJson } from "./shared.js";

/** The reference's published tool contracts (names, schemas) as facts. */
const TOOLING = readSharedJson("fixtures/reference/contract/tooling.json") as JsonObject[];

/** Tools whose results carry the decision's action receipt as an extra `action` field (spec §6). */
const WITH_ACTION = new Set(["scenario_next", "scenario_trigger"]);

const validators = new Map<string, SchemaValidator>(
  TOOLING.map((tool) => [tool.name as string, compileJsonSchema(tool.output_schema as JsonValue)]),
);

/**
 * Why `output` does not validate against the reference's output schema of `tool`, or undefined when it does.
 * Only the receipt that spec §6 attaches to `scenario_next` / `scenario_trigger` results is set aside; this
 * project's own tools (no reference contract) are not checked.
 */
export function referenceOutputProblem(tool: string, output: JsonValue): string | undefined {
  const validate = validators.get(tool);
  if (validate === undefined) return undefined;
  if (WITH_ACTION.has(tool) && isJsonObject(output)) {
    const { action: _receipt, ...rest } = output;
    return validate(rest);
  }
  return validate(output);
}

/** A client whose every successful `tools/call` output must validate against the reference's output schema. */
export function checkingOutputs(client: McpClient): McpClient {
  return {
    listTools: () => client.listTools(),
    listResources: () => client.listResources(),
    readResource: (uri) => client.readResource(uri),
    close: () => client.close(),
    async callTool(name, args) {
      const output = await client.callTool(name, args);
      const problem = referenceOutputProblem(name, output);
      if (problem !== undefined) throw new Error(`${name} output breaks the reference's output schema: ${problem}`);
      return output;
    },
  };
}
