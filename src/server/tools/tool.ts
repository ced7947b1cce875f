import type { z } from "zod";
import type { JsonSchemaNode } from "../../core/wire/json-schema.js";
import type { JsonValue } from "../../json/value.js";
import type { CallContext } from "../context.js";
import type { ServerServices } from "../services.js";
import type { ScenarioRuntimes } from "./scenario-runtimes.js";

/** MCP tool annotations (ecosystem §3.2); a hint left out is false. */
export interface ToolHints {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/**
 * How large a tool's arguments may be: `document` tools carry specs, schemas or payloads and may use the whole
 * request body limit; `small` tools take a few ids and are capped at 64 KiB.
 */
export type ArgumentSize = "document" | "small";

/** What every tool works with, built once per server. */
export interface ToolEnvironment {
  services: ServerServices;
  runtimes: ScenarioRuntimes;
}

/** One call of a tool, besides its decoded arguments. */
export interface ToolCall extends ToolEnvironment {
  context: CallContext;
  /** The arguments as sent, for audit records that keep the request. */
  rawArgs: JsonValue;
}

/**
 * One tool, complete: everything the router, `tools/list`, configuration checks, metrics and docs know about it
 * comes from here (in the manner of the MCP SDK's `registerTool`). The reference's tools take their description
 * and input and output schemas from its tooling.json (src/server/tools/catalog.ts); this project's own tools
 * bring a `contract`, and their input schema is derived from `args`.
 */
export interface Tool<Args extends z.ZodType = z.ZodType> {
  name: string;
  /** Decodes the arguments; a failure is `invalid_params` naming the field. */
  args: Args;
  argumentSize: ArgumentSize;
  annotations?: Partial<ToolHints>;
  /** The result carries the decision's runtime action receipt as `action` (spec §6) when the layer is enabled. */
  attachesAction?: boolean;
  /** Whether the tool exists on this server; always, unless configuration leaves it out. */
  available?(services: ServerServices): boolean;
  /** Only for tools the reference does not publish. */
  contract?: { description: string; outputSchema: JsonSchemaNode };
  run(args: z.output<Args>, call: ToolCall): Promise<unknown>;
}

/** Declares a tool, inferring the type of its decoded arguments from `args`. */
export function defineTool<Args extends z.ZodType>(tool: Tool<Args>): Tool<Args> {
  return tool;
}
