import { InvalidInputError, InvalidRequestError, JsonParseError, MethodNotFoundError } from "../../core/errors.js";
import { parseJsonBytes } from "../../json/parse.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../../json/value.js";
import { compactJson } from "../../json/write.js";
import type { RequestInfo, ToolRouter } from "../router.js";
import { toWireError, type WireError } from "../wire-errors.js";

/** The outcome of one Decision Gate dialect message: the response, and what happened, for transports and audit. */
export interface RpcOutcome {
  response: JsonObject;
  /** The JSON text of the request's id, once known. */
  requestId: string | null;
  httpStatus: number;
  method: string | null;
  tool: string | null;
  error: WireError | null;
}

/**
 * Handles one JSON-RPC message of the Decision Gate dialect (interface §2): `tools/list`, `tools/call`,
 * `resources/list`, `resources/read`; results wrapped as `{"content":[{"type":"json","json":…}]}`; every failure a
 * JSON-RPC error with `data {kind, retryable, request_id}`.
 */
export async function handleDgMessage(router: ToolRouter, body: Uint8Array, request: RequestInfo): Promise<RpcOutcome> {
  let id: JsonValue = null;
  let method: string | null = null;
  let tool: string | null = null;
  let requestId: string | null = null;
  try {
    const envelope = parseEnvelope(body);
    id = envelope.id;
    method = envelope.method;
    // The reference's `request_id` is the id as JSON text: `1` → "1", "a" → "\"a\"".
    requestId = compactJson(id);
    if (envelope.jsonrpc !== "2.0") throw new InvalidRequestError("invalid json-rpc version");
    const info = { ...request, requestId };
    if (method === "tools/call") tool = toolNameOf(envelope.params);
    const result = await dispatch(router, method, envelope.params, info);
    return { response: { jsonrpc: "2.0", id, result }, requestId, httpStatus: 200, method, tool, error: null };
  } catch (error) {
    const wire = toWireError(error);
    const response = errorResponse(id, wire, requestId);
    return { response, requestId, httpStatus: wire.httpStatus, method, tool, error: wire };
  }
}

export function errorResponse(id: JsonValue, wire: WireError, requestId: string | null): JsonObject {
  const data: JsonObject = { kind: wire.kind, retryable: wire.retryable, request_id: requestId };
  if (wire.retryAfterMs !== undefined) data.retry_after_ms = BigInt(wire.retryAfterMs);
  return { jsonrpc: "2.0", id, error: { code: BigInt(wire.code), message: wire.message, data } };
}

interface Envelope {
  jsonrpc: string;
  id: JsonValue;
  method: string;
  params: JsonValue | undefined;
}

function parseEnvelope(body: Uint8Array): Envelope {
  let message: JsonValue;
  try {
    message = parseJsonBytes(body);
  } catch (error) {
    if (error instanceof JsonParseError) throw new InvalidRequestError("invalid json-rpc request");
    throw error;
  }
  if (!isJsonObject(message)) throw new InvalidRequestError("invalid json-rpc request");
  const { jsonrpc, id, method, params } = message;
  if (typeof jsonrpc !== "string" || id === undefined || typeof method !== "string") {
    throw new InvalidRequestError("invalid json-rpc request");
  }
  return { jsonrpc, id, method, params };
}

async function dispatch(
  router: ToolRouter,
  method: string,
  params: JsonValue | undefined,
  info: RequestInfo,
): Promise<JsonValue> {
  switch (method) {
    case "tools/list":
      return {
        tools: router.listTools(info).map((tool) => ({
          name: tool.name,
          description: tool.description,
          input_schema: tool.inputSchema as JsonValue,
        })),
      };
    case "tools/call": {
      const { name, args } = callParams(params);
      const output = await router.callTool(name, args, info);
      return { content: [{ type: "json", json: output as JsonValue }] };
    }
    case "resources/list":
      if (!router.resourcesEnabled) throw new MethodNotFoundError("method not found");
      return router.resourcesList(info);
    case "resources/read":
      if (!router.resourcesEnabled) throw new MethodNotFoundError("method not found");
      return router.resourcesRead(params, info);
    default:
      throw new MethodNotFoundError("method not found");
  }
}

function toolNameOf(params: JsonValue | undefined): string | null {
  return isJsonObject(params) && typeof params.name === "string" ? params.name : null;
}

function callParams(params: JsonValue | undefined): { name: string; args: JsonValue } {
  if (!isJsonObject(params) || typeof params.name !== "string" || params.arguments === undefined) {
    throw new InvalidInputError("invalid tool params");
  }
  return { name: params.name, args: params.arguments };
}
