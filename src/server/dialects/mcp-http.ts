import type { IncomingHttpHeaders } from "node:http";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  isInitializeRequest,
  isJSONRPCRequest,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  type JSONRPCRequest,
  type RequestId,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
import { InternalError } from "../../core/errors.js";
import type { RequestInfo } from "../router.js";

/** An answer to one `POST /mcp`: its status and JSON body (none for 202). */
export interface McpHttpAnswer {
  status: number;
  body: string | null;
}

/**
 * Standard MCP over Streamable HTTP, stateless with JSON answers, on one long-lived SDK server (issue 16: the
 * per-request server and transport of the SDK's stateless example cost about 30 % of the main thread). The SDK
 * still does the protocol: it validates every message, answers `initialize` (negotiating the version), `ping` and
 * unknown methods, and runs the request handlers. This class does what the SDK's Streamable HTTP transport does
 * for a stateless POST with `enableJsonResponse`, with the same statuses and messages: 406 without an `Accept`
 * naming both answer types, 400 for unreadable JSON, a non-JSON-RPC message or an unsupported
 * `MCP-Protocol-Version`, 202 for a notification or response, 200 with the JSON-RPC response for a request. The
 * `Content-Type` was checked before the body was read (`requireJsonBody`), and batches were refused.
 */
export class StatelessMcpHttp {
  private readonly exchanges = new Exchanges();

  /** `createServer` builds the one server; its handlers find each request's caller with `requestInfoOf`. */
  constructor(createServer: (requestInfoOf: (requestId: RequestId) => RequestInfo) => Server) {
    // `connect` installs the message handlers before it awaits the transport's (trivial) start.
    void createServer((requestId) => this.exchanges.requestInfoOf(requestId)).connect(this.exchanges);
  }

  async handle(headers: IncomingHttpHeaders, body: unknown, request: RequestInfo): Promise<McpHttpAnswer> {
    const accept = headers.accept;
    if (!accept?.includes("application/json") || !accept.includes("text/event-stream")) {
      return failure(406, -32000, "Not Acceptable: Client must accept both application/json and text/event-stream");
    }
    if (body === undefined) return failure(400, -32700, "Parse error: Invalid JSON");
    const parsed = JSONRPCMessageSchema.safeParse(body);
    if (!parsed.success) return failure(400, -32700, "Parse error: Invalid JSON-RPC message");
    const message = parsed.data;
    const version = headers["mcp-protocol-version"];
    if (
      !isInitializeRequest(message) &&
      typeof version === "string" &&
      !SUPPORTED_PROTOCOL_VERSIONS.includes(version)
    ) {
      const supported = SUPPORTED_PROTOCOL_VERSIONS.join(", ");
      return failure(
        400,
        -32000,
        `Bad Request: Unsupported protocol version: ${version} (supported versions: ${supported})`,
      );
    }
    // A stateless server has no request of its own for a response to answer, and no earlier request of this
    // client for `notifications/cancelled` or `notifications/progress` to refer to: notifications and responses
    // change nothing (as on the fresh server of the SDK's stateless example) and never reach the shared server.
    if (!isJSONRPCRequest(message)) return { status: 202, body: null };
    return { status: 200, body: JSON.stringify(await this.exchanges.exchange(message, request)) };
  }
}

function failure(status: number, code: number, message: string): McpHttpAnswer {
  return { status, body: JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }) };
}

interface Exchange {
  clientId: RequestId;
  request: RequestInfo;
  answer(response: JSONRPCMessage): void;
}

/**
 * The one transport of the shared server. Concurrent clients reuse JSON-RPC ids (every SDK client starts at 0),
 * so each request enters the server under an id of its own, by which its handlers find their caller and its
 * response finds its HTTP request; the client's id is put back on the response.
 */
class Exchanges implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private lastId = 0;
  private readonly open = new Map<RequestId, Exchange>();

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.onclose?.();
  }

  exchange(message: JSONRPCRequest, request: RequestInfo): Promise<JSONRPCMessage> {
    const id = ++this.lastId;
    return new Promise((answer) => {
      this.open.set(id, { clientId: message.id, request, answer });
      this.onmessage?.({ ...message, id });
    });
  }

  requestInfoOf(id: RequestId): RequestInfo {
    const exchange = this.open.get(id);
    if (exchange === undefined) throw new InternalError(`no open MCP request ${id}`);
    return exchange.request;
  }

  /** Only responses are sent: the server's handlers send no notifications or requests of their own. */
  async send(message: JSONRPCMessage): Promise<void> {
    const id = "method" in message ? undefined : message.id;
    const exchange = id === undefined ? undefined : this.open.get(id);
    if (id === undefined || exchange === undefined) return;
    this.open.delete(id);
    exchange.answer({ ...message, id: exchange.clientId });
  }
}
