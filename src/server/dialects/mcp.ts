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
import { type Observers, observeRequest } from "../observe.js";
import type { RequestInfo, ToolRouter } from "../router.js";
import { selfContainedSchema } from "../tools/catalog.js";
import { toWireError, type WireError } from "../wire-errors.js";

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
 * `{code, kind, message}` as the Decision Gate dialect's JSON-RPC errors.
 */
export function createMcpServer(router: ToolRouter, requestInfo: () => RequestInfo, observers: Observers): Server {
  const server = new Server(SERVER_INFO, {
    capabilities: { tools: {}, ...(router.resourcesEnabled ? { resources: {} } : {}) },
    instructions:
      "Decision Gate evaluates scenarios of gated stages over evidence. Define a scenario, start a run, then call " +
      "scenario_next; unknown or untrusted evidence holds the gate. See decision_gate_docs_search.",
  });
  server.setRequestHandler(ListToolsRequestSchema, () => {
    const info = requestInfo();
    return audited(observers, info, "tools/list", null, () => guarded(() => listTools(router, info)));
  });
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const info = requestInfo();
    const args = (request.params.arguments ?? {}) as JsonValue;
    const { result, failure } = await callTool(router, request.params.name, args, info);
    await recordRequest(observers, info, "tools/call", request.params.name, failure);
    return result;
  });
  if (router.resourcesEnabled) {
    // No `mcp_request` line, but the router's `mcp_tool_authz` line is written before the answer, as for tools.
    server.setRequestHandler(ListResourcesRequestSchema, () =>
      guarded(() => router.resourcesList(requestInfo()) as never).finally(() => observers.audit.flush()),
    );
    server.setRequestHandler(ReadResourceRequestSchema, (request) =>
      guarded(() => router.resourcesRead(request.params as unknown as JsonValue, requestInfo()) as never).finally(() =>
        observers.audit.flush(),
      ),
    );
  }
  return server;
}

function listTools(router: ToolRouter, info: RequestInfo) {
  return {
    tools: router.listTools(info).map((tool) => ({
      name: tool.name,
      title: tool.annotations.title,
      description: tool.description,
      inputSchema: selfContainedSchema(tool.inputSchema) as { type: "object" },
      outputSchema: tool.outputSchema as { type: "object" },
      annotations: tool.annotations,
    })),
  };
}

async function callTool(router: ToolRouter, name: string, args: JsonValue, info: RequestInfo) {
  try {
    const output = (await router.callTool(name, args, info)) as JsonValue;
    const result = {
      content: [{ type: "text" as const, text: compactJson(output) }],
      structuredContent: toPlainJson(output) as Record<string, unknown>,
    };
    return { result, failure: null };
  } catch (error) {
    const wire = toWireError(error);
    const text = JSON.stringify({ code: wire.code, kind: wire.kind, message: wire.message });
    return { result: { isError: true, content: [{ type: "text" as const, text }] }, failure: wire };
  }
}

/** Writes the `mcp_request` audit line of one MCP request; resolves once the request's audit lines are written. */
function recordRequest(
  observers: Observers,
  info: RequestInfo,
  method: string,
  tool: string | null,
  error: WireError | null,
): Promise<void> {
  return observeRequest(observers, info, {
    method,
    tool,
    error,
    requestBytes: 0,
    responseBytes: 0,
  });
}

/** Runs one MCP request that fails by throwing, auditing it either way. */
async function audited<T>(
  observers: Observers,
  info: RequestInfo,
  method: string,
  tool: string | null,
  work: () => Promise<T>,
): Promise<T> {
  try {
    const result = await work();
    await recordRequest(observers, info, method, tool, null);
    return result;
  } catch (error) {
    await recordRequest(observers, info, method, tool, toWireError(error));
    throw error;
  }
}

/** Protocol-level failures (listing, resources) become JSON-RPC errors with the Decision Gate code. */
async function guarded<T>(work: () => T): Promise<T> {
  try {
    return work();
  } catch (error) {
    const wire = toWireError(error);
    throw new McpError(wire.code, wire.message, { kind: wire.kind, retryable: wire.retryable });
  }
}
