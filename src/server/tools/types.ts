import type { JsonValue } from "../../json/value.js";
import type { CallContext } from "../context.js";

/** A tool's implementation: decodes its arguments and returns its output, or throws a `DecisionGateError`. */
export type ToolHandler = (args: JsonValue, context: CallContext) => Promise<unknown>;
export type ToolHandlers = Record<string, ToolHandler>;
