import { InvalidInputError, InvalidRequestError, JsonParseError, MethodNotFoundError } from "../../core/errors.js";
import { parseJsonBytes } from "../../json/parse.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../../json/value.js";
import { compactJson } from "../../json/write.js";
import type { Encoded, Outcome, RequestInfo, RouterCall, ToolRouter } from "../router.js";
import type { ToolDefinition } from "../tools/catalog.js";
import { toWireError, type WireError } from "../wire-errors.js";

/*
 * The Decision Gate dialect (interface §2), for `POST /rpc` and Content-Length framed stdio: JSON-RPC messages
 * `tools/list`, `tools/call`, `resources/list`, `resources/read`; results wrapped as
 * `{"content":[{"type":"json","json":…}]}`; every failure a JSON-RPC error with `data {kind, retryable, request_id}`.
 */

/** What a transport hands the dialect: a message's bytes, or why the transport refused it before reading it. */
export type DgInput = { body: Uint8Array } | { refusal: unknown; method: string | null; requestBytes: number };

/** The encoded response, with what the transport needs to send it. */
export interface DgAnswer {
  text: string;
  httpStatus: number;
  error: WireError | null;
}

/** Serves one message of the Decision Gate dialect through the router. */
export function serveDgMessage(router: ToolRouter, input: DgInput, request: RequestInfo): Promise<DgAnswer> {
  if (!("body" in input)) {
    const call: RouterCall = { kind: "refused", error: input.refusal };
    const inbound = { call, method: input.method, tool: null, requestBytes: input.requestBytes, recorded: true };
    return router.serve(request, inbound, (outcome) => encode(null, null, call, outcome));
  }
  const { id, requestId, method, tool, call, meta } = decodeMessage(input.body);
  const inbound = { call, method, tool, requestBytes: input.body.length, recorded: true, meta };
  return router.serve({ ...request, requestId }, inbound, (outcome) => encode(id, requestId, call, outcome));
}

/** The answer to a refusal outside the router (routes other than the dialects'): `id` and `request_id` null. */
export function refusalAnswer(refusal: unknown): DgAnswer {
  const wire = toWireError(refusal);
  return { text: compactJson(errorResponse(null, wire, null)), httpStatus: wire.httpStatus, error: wire };
}

function errorResponse(id: JsonValue, wire: WireError, requestId: string | null): JsonObject {
  const data: JsonObject = { kind: wire.kind, retryable: wire.retryable, request_id: requestId };
  if (wire.retryAfterMs !== undefined) data.retry_after_ms = BigInt(wire.retryAfterMs);
  return { jsonrpc: "2.0", id, error: { code: BigInt(wire.code), message: wire.message, data } };
}

interface DecodedMessage {
  id: JsonValue;
  /** The id as JSON text (the reference's `request_id`: `1` → "1", "a" → "\"a\""), once read. */
  requestId: string | null;
  method: string | null;
  tool: string | null;
  call: RouterCall;
  /** `params._meta` (a caller's `traceparent`), for tracing. */
  meta?: JsonValue;
}

/** Reads as much of the message as it can, so that even a refused one is answered and audited with its id. */
function decodeMessage(body: Uint8Array): DecodedMessage {
  let id: JsonValue = null;
  let requestId: string | null = null;
  let method: string | null = null;
  let tool: string | null = null;
  try {
    const envelope = parseEnvelope(body);
    id = envelope.id;
    method = envelope.method;
    requestId = compactJson(id);
    if (envelope.jsonrpc !== "2.0") throw new InvalidRequestError("invalid json-rpc version");
    if (method === "tools/call") tool = toolNameOf(envelope.params);
    const meta = isJsonObject(envelope.params) ? envelope.params._meta : undefined;
    return { id, requestId, method, tool, call: routerCall(method, envelope.params), meta };
  } catch (error) {
    return { id, requestId, method, tool, call: { kind: "refused", error } };
  }
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

function routerCall(method: string, params: JsonValue | undefined): RouterCall {
  switch (method) {
    case "tools/list":
    case "resources/list":
      return { kind: method };
    case "tools/call":
      if (!isJsonObject(params) || typeof params.name !== "string" || params.arguments === undefined) {
        throw new InvalidInputError("invalid tool params");
      }
      return { kind: "tools/call", tool: params.name, args: params.arguments };
    case "resources/read":
      return { kind: "resources/read", params };
    default:
      throw new MethodNotFoundError("method not found");
  }
}

function toolNameOf(params: JsonValue | undefined): string | null {
  return isJsonObject(params) && typeof params.name === "string" ? params.name : null;
}

function encode(id: JsonValue, requestId: string | null, call: RouterCall, outcome: Outcome): Encoded<DgAnswer> {
  const response = outcome.ok
    ? { jsonrpc: "2.0", id, result: resultOf(call, outcome.value) }
    : errorResponse(id, outcome.error, requestId);
  const text = compactJson(response);
  const answer = outcome.ok
    ? { text, httpStatus: 200, error: null }
    : { text, httpStatus: outcome.error.httpStatus, error: outcome.error };
  return { answer, responseBytes: Buffer.byteLength(text) };
}

function resultOf(call: RouterCall, value: unknown): JsonValue {
  switch (call.kind) {
    case "tools/list":
      return {
        tools: (value as readonly ToolDefinition[]).map((tool) => ({
          name: tool.name,
          description: tool.description,
          input_schema: tool.inputSchema as JsonValue,
        })),
      };
    case "tools/call":
      return { content: [{ type: "json", json: value as JsonValue }] };
    default:
      return value as JsonValue;
  }
}
