import type { EvidenceContext } from "../../core/run/evidence.js";
import { EvidenceResult } from "../../core/run/schema.js";
import type { EvidenceQuery } from "../../core/spec/schema.js";
import { parseJson, parseJsonBytes } from "../../json/parse.js";
import { isJsonObject, type JsonObject, type JsonValue } from "../../json/value.js";
import { compactJson } from "../../json/write.js";
import { EvidenceProviderFailure } from "../provider.js";
import type { McpProtocol } from "./config.js";

/*
 * JSON-RPC messages exchanged with an external evidence provider (evidence §2.2), shared by both transports.
 * All JSON goes through the lossless parser and writer, so integers beyond 2^53 survive both ways.
 */

/** Largest provider response accepted, on stdio and over HTTP. */
export const MAX_MCP_RESPONSE_BYTES = 1_048_576;
export const MCP_PROTOCOL_VERSION = "2025-06-18";
export const CLIENT_INFO = { name: "decision-gate", version: "0.1.0" };
/** The handshake has its own id so that `tools/call` ids keep counting from 1 as in the reference. */
const INITIALIZE_ID = "initialize";

export type JsonRpcId = string | bigint;

/** One request ready to send: its id (to match the response), its JSON text, and the correlation id header. */
export interface RpcCall {
  id: JsonRpcId;
  body: string;
  correlationId: string | null;
}

/** A connection to one provider. Implementations serialize calls and handle the `mcp` handshake themselves. */
export interface McpTransport {
  /** Sends `call` and resolves with the response message (not yet checked against the call's id). */
  request(call: RpcCall): Promise<JsonObject>;
  close(): Promise<void>;
}

/**
 * A provider failure that knows whether trying again may help: lost connections, dead or unstartable processes,
 * timeouts and overloaded HTTP servers are transient; a provider's own error or a malformed answer is not.
 */
export class McpProviderFailure extends EvidenceProviderFailure {
  readonly transient: boolean;
  /** The message without the engine's `evidence provider error: ` prefix. */
  readonly reason: string;

  constructor(reason: string, options: { transient?: boolean } = {}) {
    super(reason);
    this.reason = reason;
    this.transient = options.transient ?? false;
  }
}

export function transientFailure(reason: string): McpProviderFailure {
  return new McpProviderFailure(reason, { transient: true });
}

export function isTransientFailure(error: unknown): boolean {
  return error instanceof McpProviderFailure && error.transient;
}

/** A failure that trying again would not fix. */
export function failure(reason: string): McpProviderFailure {
  return new McpProviderFailure(reason);
}

export function encodeRequest(id: JsonRpcId, method: string, params: JsonObject): string {
  return compactJson({ jsonrpc: "2.0", id, method, params });
}

export function encodeNotification(method: string): string {
  return compactJson({ jsonrpc: "2.0", method });
}

/** The `evidence_query` call; `query.params` is left out when unset, as the reference serializes it. */
export function evidenceQueryCall(
  id: JsonRpcId,
  correlationId: string | null,
  query: EvidenceQuery,
  context: EvidenceContext,
): RpcCall {
  const params: JsonObject = {
    name: "evidence_query",
    arguments: { query: queryJson(query), context: contextJson(context) },
  };
  return { id, body: encodeRequest(id, "tools/call", params), correlationId };
}

function queryJson(query: EvidenceQuery): JsonObject {
  return { provider_id: query.provider_id, check_id: query.check_id, params: query.params };
}

function contextJson(context: EvidenceContext): JsonObject {
  return {
    tenant_id: context.tenant_id,
    namespace_id: context.namespace_id,
    run_id: context.run_id,
    scenario_id: context.scenario_id,
    stage_id: context.stage_id,
    trigger_id: context.trigger_id,
    trigger_time: { kind: context.trigger_time.kind, value: context.trigger_time.value },
    correlation_id: context.correlation_id,
  };
}

/** Parses one received message; anything but a JSON object is `invalid json-rpc response`. */
export function parseMessage(body: Uint8Array | string): JsonObject {
  let message: JsonValue;
  try {
    message = typeof body === "string" ? parseJson(body) : parseJsonBytes(body);
  } catch {
    throw failure("invalid json-rpc response");
  }
  if (!isJsonObject(message)) throw failure("invalid json-rpc response");
  return message;
}

/** Requests and notifications sent by the server carry a `method`; responses never do. */
export function isServerMessage(message: JsonObject): boolean {
  return typeof message.method === "string";
}

/**
 * What to send back for a request the server made while a call was in flight: `ping` gets an empty result, any
 * other request "method not found". Notifications (no id) get nothing.
 */
export function replyToServerMessage(message: JsonObject): string | null {
  const id = message.id;
  if (id === undefined || id === null) return null;
  if (message.method === "ping") return compactJson({ jsonrpc: "2.0", id, result: {} });
  return compactJson({ jsonrpc: "2.0", id, error: { code: -32601n, message: "Method not found" } });
}

/**
 * The `result` of a response to the request `expectedId`, or `null` when it has none. A JSON-RPC error becomes a
 * failure carrying the provider's message verbatim (also when the id is `null`, as JSON-RPC allows for errors
 * about unreadable requests); a response to any other id is refused, unless `expectedId` is undefined (the
 * reference protocol, whose responses are taken whatever their id).
 */
export function resultOf(message: JsonObject, expectedId: JsonRpcId | undefined): JsonValue {
  const error = message.error ?? null;
  if (error !== null && !(isJsonObject(error) && typeof error.message === "string")) {
    throw failure("invalid json-rpc response");
  }
  const idMatches = expectedId === undefined || (typeof message.id === typeof expectedId && message.id === expectedId);
  if (error !== null && (idMatches || message.id === null)) throw failure(error.message as string);
  if (!idMatches) throw failure("mcp response id mismatch");
  return message.result ?? null;
}

/**
 * Decodes a `tools/call` result into an `EvidenceResult`.
 *
 * `decision_gate` is the reference's rule: `{"content":[...]}` whose items are all `json` or `text` items, and only
 * the first is used — `{"type":"json","json":<EvidenceResult>}` is the answer, text is refused.
 *
 * `mcp` also accepts what standard MCP servers send: an `isError` result fails with its first text verbatim;
 * otherwise `structuredContent` holding an EvidenceResult wins; otherwise the first content item is used, where a
 * `text` item may carry the EvidenceResult as JSON text (parsed losslessly, so it is the exact form to prefer for
 * integers beyond 2^53).
 */
export function decodeToolResult(result: JsonValue, protocol: McpProtocol): EvidenceResult {
  if (result === null) throw failure("missing tool result");
  if (!isJsonObject(result)) throw failure("invalid tool result");
  return protocol === "mcp" ? decodeStandardResult(result) : decodeReferenceResult(result);
}

function decodeReferenceResult(result: JsonObject): EvidenceResult {
  const content = result.content;
  if (!Array.isArray(content) || !content.every(isReferenceContent)) throw failure("invalid tool result");
  const first = content[0];
  if (first === undefined) throw failure("empty tool result");
  if (first.type === "text") throw failure(`unexpected text response: ${first.text as string}`);
  return decodeEvidence(first.json);
}

function isReferenceContent(item: JsonValue): item is JsonObject {
  if (!isJsonObject(item)) return false;
  if (item.type === "text") return typeof item.text === "string";
  return item.type === "json" && EvidenceResult.safeParse(item.json).success;
}

function decodeStandardResult(result: JsonObject): EvidenceResult {
  const content = result.content;
  if (result.isError === true) throw failure(firstText(content) ?? "invalid tool result");
  if (result.structuredContent !== undefined && result.structuredContent !== null) {
    return decodeEvidence(result.structuredContent);
  }
  if (!Array.isArray(content)) throw failure("invalid tool result");
  const first = content[0];
  if (first === undefined) throw failure("empty tool result");
  if (!isJsonObject(first)) throw failure("invalid tool result");
  if (first.type === "json") return decodeEvidence(first.json);
  if (first.type === "text" && typeof first.text === "string") return decodeEvidenceText(first.text);
  throw failure("invalid tool result");
}

function firstText(content: JsonValue | undefined): string | undefined {
  if (!Array.isArray(content)) return undefined;
  const text = content.find((item) => isJsonObject(item) && item.type === "text" && typeof item.text === "string");
  return isJsonObject(text) ? (text.text as string) : undefined;
}

function decodeEvidenceText(text: string): EvidenceResult {
  let value: JsonValue;
  try {
    value = parseJson(text);
  } catch {
    throw failure(`unexpected text response: ${text}`);
  }
  return decodeEvidence(value);
}

function decodeEvidence(value: JsonValue | undefined): EvidenceResult {
  const decoded = EvidenceResult.safeParse(value);
  if (!decoded.success) throw failure("invalid tool result");
  return decoded.data;
}

/** The MCP `initialize` request; its response goes to `negotiatedVersion`, then `INITIALIZED_NOTIFICATION` is sent. */
export function initializeCall(): RpcCall {
  const params: JsonObject = { protocolVersion: MCP_PROTOCOL_VERSION, capabilities: {}, clientInfo: CLIENT_INFO };
  return { id: INITIALIZE_ID, body: encodeRequest(INITIALIZE_ID, "initialize", params), correlationId: null };
}

export const INITIALIZED_NOTIFICATION = encodeNotification("notifications/initialized");

/** The protocol version the server chose in its `initialize` response. */
export function negotiatedVersion(response: JsonObject): string {
  const result = resultOf(response, INITIALIZE_ID);
  if (!isJsonObject(result) || typeof result.protocolVersion !== "string") throw failure("invalid initialize result");
  return result.protocolVersion;
}
