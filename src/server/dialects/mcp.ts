import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { isJsonObject, type JsonValue, toPlainJson } from "../../json/value.js";
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
 * `outputSchema` and annotations; results carry `structuredContent` plus the exact JSON as text (the text keeps
 * integers beyond 2^53 exact, the structured form cannot); tool failures are `isError` results with the same
 * `{code, kind, message}` as the Decision Gate dialect's JSON-RPC errors. `initialize`, `ping` and notifications
 * are the SDK's own and never reach the router.
 */
export function createMcpServer(router: ToolRouter, requestInfo: () => RequestInfo): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: {}, ...(router.resourcesEnabled ? { resources: {} } : {}) },
    instructions:
      "Decision Gate evaluates scenarios of gated stages over evidence. Define a scenario, start a run, then call " +
      "scenario_next; unknown or untrusted evidence holds the gate. See decision_gate_docs_search.",
  });
  const serve = (call: RouterCall, method: string, tool: string | null, recorded = true) =>
    router.serve(requestInfo(), { call, method, tool, requestBytes: 0, recorded }, sdkEncoded);
  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools = protocolResult(await serve({ kind: "tools/list" }, "tools/list", null)) as readonly ToolDefinition[];
    return { tools: tools.map(mcpTool) };
  });
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const { name } = request.params;
    const args = (request.params.arguments ?? {}) as JsonValue;
    return toolResult(await serve({ kind: "tools/call", tool: name, args }, "tools/call", name));
  });
  if (router.resourcesEnabled) {
    // No `mcp_request` line, but the router's `mcp_tool_authz` line is written before the answer, as for tools.
    server.setRequestHandler(
      ListResourcesRequestSchema,
      async () => protocolResult(await serve({ kind: "resources/list" }, "resources/list", null, false)) as never,
    );
    server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
      const call: RouterCall = { kind: "resources/read", params: request.params as unknown as JsonValue };
      return protocolResult(await serve(call, "resources/read", null, false)) as never;
    });
  }
  return server;
}

/** The SDK encodes and sends the answer itself; its size is not known here (recorded as 0). */
function sdkEncoded(outcome: Outcome) {
  return { answer: outcome, responseBytes: 0 };
}

function mcpTool(tool: ToolDefinition) {
  return {
    name: tool.name,
    title: tool.annotations.title,
    description: tool.description,
    inputSchema: selfContainedSchema(tool.inputSchema) as { type: "object" },
    outputSchema: tool.outputSchema as { type: "object" },
    annotations: tool.annotations,
  };
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
    structuredContent: toPlainJson(output) as Record<string, unknown>,
  };
}

/** Protocol-level failures (listing, resources) are JSON-RPC errors with the Decision Gate code. */
function protocolResult(outcome: Outcome): unknown {
  if (outcome.ok) return outcome.value;
  const { code, message, kind, retryable } = outcome.error;
  throw new McpError(code, message, { kind, retryable });
}
