import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type RequestId,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import type { JsonSchemaNode } from "../../core/wire/json-schema.js";
import { isJsonObject, type JsonValue, toPlainJson, toStructuredJson } from "../../json/value.js";
import { compactJson } from "../../json/write.js";
import type { Outcome, RequestInfo, RouterCall, ToolRouter } from "../router.js";
import { selfContainedSchema, type ToolDefinition } from "../tools/catalog.js";

export const SERVER_INFO = { name: "decision-gate", version: "0.1.0" };

/**
 * A JSON-RPC message for the SDK from the lossless parse: the envelope as plain JSON (the SDK expects numeric ids
 * as numbers), while a `tools/call`'s arguments keep their exact integers for the router.
 */
export function sdkMessage(message: JsonValue): unknown {
  const plain = toPlainJson(message);
  if (!isJsonObject(message) || !isJsonObject(message.params) || message.params.arguments === undefined) return plain;
  const envelope = plain as { params: Record<string, unknown> };
  return { ...envelope, params: { ...envelope.params, arguments: message.params.arguments } };
}

/**
 * A standard MCP server (D1) over the same router as the Decision Gate dialect. Tools carry `inputSchema`,
 * `outputSchema` and annotations; results carry `structuredContent` (integers beyond 2^53 as decimal strings) plus
 * the exact JSON as text; tool failures are `isError` results with the same
 * `{code, kind, message}` as the Decision Gate dialect's JSON-RPC errors. `initialize`, `ping` and notifications
 * are the SDK's own and never reach the router.
 */
export function createMcpServer(router: ToolRouter, requestInfo: (requestId: RequestId) => RequestInfo): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: {}, ...(router.resourcesEnabled ? { resources: {} } : {}) },
    instructions:
      "Decision Gate evaluates scenarios of gated stages over evidence. Define a scenario, start a run, then call " +
      "scenario_next; unknown or untrusted evidence holds the gate. See decision_gate_docs_search.",
  });
  const serve = (
    requestId: RequestId,
    call: RouterCall,
    method: string,
    tool: string | null,
    recorded = true,
    meta?: unknown,
  ) =>
    router.serve(
      requestInfo(requestId),
      { call, method, tool, requestBytes: 0, recorded, meta, jsonRpcId: requestId },
      sdkEncoded,
    );
  server.setRequestHandler(ListToolsRequestSchema, async (_request, { requestId }) => {
    const listed = protocolResult(await serve(requestId, { kind: "tools/list" }, "tools/list", null));
    return { tools: (listed as readonly ToolDefinition[]).map(mcpTool) };
  });
  server.setRequestHandler(CallToolRequestSchema, async (request, { requestId }) => {
    const { name } = request.params;
    const args = (request.params.arguments ?? {}) as JsonValue;
    const call: RouterCall = { kind: "tools/call", tool: name, args };
    return toolResult(await serve(requestId, call, "tools/call", name, true, request.params._meta));
  });
  if (router.resourcesEnabled) {
    // No `mcp_request` line, but the router's `mcp_tool_authz` line is written before the answer, as for tools.
    server.setRequestHandler(ListResourcesRequestSchema, async (_request, { requestId }) => {
      const call: RouterCall = { kind: "resources/list" };
      return protocolResult(await serve(requestId, call, "resources/list", null, false)) as never;
    });
    server.setRequestHandler(ReadResourceRequestSchema, async (request, { requestId }) => {
      const call: RouterCall = { kind: "resources/read", params: request.params as unknown as JsonValue };
      return protocolResult(await serve(requestId, call, "resources/read", null, false)) as never;
    });
  }
  return server;
}

/** The SDK encodes and sends the answer itself; its size is not known here (recorded as 0). */
function sdkEncoded(outcome: Outcome) {
  return { answer: outcome, responseBytes: 0 };
}

type McpTool = Tool & { outputSchema: NonNullable<Tool["outputSchema"]> };
const MCP_TOOLS = new WeakMap<ToolDefinition, McpTool>();

/** A tool as standard MCP lists it (computed once per definition). */
function mcpTool(tool: ToolDefinition): McpTool {
  const known = MCP_TOOLS.get(tool);
  if (known !== undefined) return known;
  const listed = {
    name: tool.name,
    title: tool.annotations.title,
    description: tool.description,
    inputSchema: selfContainedSchema(tool.inputSchema) as McpTool["inputSchema"],
    outputSchema: withDecimalIntegers(tool.outputSchema) as McpTool["outputSchema"],
    annotations: tool.annotations,
  };
  MCP_TOOLS.set(tool, listed);
  return listed;
}

/** Keywords whose values are data, not schemas; and keywords whose values map names to schemas. */
const DATA_KEYWORDS = new Set(["const", "default", "enum", "examples"]);
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);
const DECIMAL_INTEGER = "^-?(0|[1-9][0-9]*)$";

/**
 * The output schema as `structuredContent` follows it: a number may also be a decimal string, which is how
 * integers beyond 2^53 are written there (`toStructuredJson`). `pattern` constrains strings only, so it is added
 * only where the schema did not admit strings already.
 */
function withDecimalIntegers(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withDecimalIntegers);
  if (typeof schema !== "object" || schema === null) return schema;
  const copy: JsonSchemaNode = {};
  for (const [keyword, value] of Object.entries(schema)) {
    if (DATA_KEYWORDS.has(keyword)) copy[keyword] = value;
    else if (SCHEMA_MAPS.has(keyword) && typeof value === "object" && value !== null) {
      copy[keyword] = Object.fromEntries(
        Object.entries(value).map(([name, node]) => [name, withDecimalIntegers(node)]),
      );
    } else copy[keyword] = withDecimalIntegers(value);
  }
  const types = typeof copy.type === "string" ? [copy.type] : copy.type;
  if (!Array.isArray(types) || !types.some((type) => type === "integer" || type === "number")) return copy;
  if (types.includes("string")) return copy;
  return { ...copy, type: [...types, "string"], pattern: DECIMAL_INTEGER };
}

/** A tool's output, or its failure as an `isError` result. */
function toolResult(outcome: Outcome) {
  if (!outcome.ok) {
    const { code, kind, message } = outcome.error;
    return { isError: true, content: [{ type: "text" as const, text: JSON.stringify({ code, kind, message }) }] };
  }
  const output = outcome.value as JsonValue;
  return {
    content: [{ type: "text" as const, text: compactJson(output) }],
    structuredContent: toStructuredJson(output) as Record<string, unknown>,
  };
}

/** Protocol-level failures (listing, resources) are JSON-RPC errors with the Decision Gate code. */
function protocolResult(outcome: Outcome): unknown {
  if (outcome.ok) return outcome.value;
  const { code, message, kind, retryable } = outcome.error;
  throw new McpError(code, message, { kind, retryable });
}
