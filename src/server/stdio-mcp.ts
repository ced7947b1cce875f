import type { Writable } from "node:stream";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  ErrorCode,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  JSONRPCRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { JsonParseError } from "../core/errors.js";
import { parseJsonBytes } from "../json/parse.js";
import { isJsonObject, type JsonValue } from "../json/value.js";
import { compactJson } from "../json/write.js";
import { encodeLine } from "../net/framing.js";
import { sdkMessage } from "./dialects/mcp.js";
import { toWireError } from "./wire-errors.js";

/** One framed message of input (a line, or a Content-Length frame): its bytes, or why it could not be read. */
export type Frame = { body: Buffer } | { problem: Error };

type RequestId = string | number | bigint;
type RpcError = { code: number; message: string };

/**
 * Standard MCP on stdio: the SDK server over a transport that reads lines losslessly. No line ends the session:
 * every message the SDK cannot take is answered here (or dropped where JSON-RPC forbids an answer), since the SDK
 * would report it only through `onerror` and leave the client waiting.
 */
export async function serveMcpLines(
  lines: AsyncIterable<Frame>,
  output: Writable,
  createServer: () => Server,
): Promise<void> {
  const transport = new LineTransport(lines, output);
  const server = createServer();
  const closed = new Promise<void>((resolve) => {
    server.onclose = resolve;
  });
  await server.connect(transport);
  await closed;
}

/** A newline-delimited JSON-RPC transport that parses with the lossless parser (exact 64-bit integers). */
class LineTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  constructor(
    private readonly lines: AsyncIterable<Frame>,
    private readonly output: Writable,
  ) {}

  async start(): Promise<void> {
    void this.pump().finally(() => this.close());
  }

  async send(message: JSONRPCMessage): Promise<void> {
    this.output.write(encodeLine(JSON.stringify(message)));
  }

  async close(): Promise<void> {
    this.onclose?.();
  }

  private async pump(): Promise<void> {
    try {
      for await (const line of this.lines) {
        if ("problem" in line) this.reply(null, toWireError(line.problem));
        else this.receive(line.body);
      }
    } catch (error) {
      this.onerror?.(error as Error);
    }
  }

  private receive(line: Buffer): void {
    let raw: JsonValue | undefined;
    try {
      raw = parseJsonBytes(line);
      const verdict = triage(raw);
      if ("accept" in verdict) this.onmessage?.(verdict.accept);
      else if ("refuse" in verdict) this.reply(verdict.refuse, verdict.error);
    } catch (error) {
      if (error instanceof JsonParseError) {
        this.reply(null, { code: ErrorCode.ParseError, message: "parse error" });
        return;
      }
      // Not expected (the SDK answers every message it accepts); should anything throw, the session goes on.
      this.onerror?.(error as Error);
      this.reply(raw === undefined ? null : requestIdOf(raw), {
        code: ErrorCode.InternalError,
        message: "internal error",
      });
    }
  }

  private reply(id: RequestId | null, error: RpcError): void {
    this.output.write(
      encodeLine(compactJson({ jsonrpc: "2.0", id, error: { code: error.code, message: error.message } })),
    );
  }
}

/**
 * How to treat one parsed line. A JSON-RPC message the SDK accepts goes to the SDK. Anything else is refused
 * with `-32602` when only `params` is wrong and `-32600` otherwise, for the message's id when it has a usable
 * one, or dropped where JSON-RPC forbids an answer: a notification (a `method` without an `id`) or anything
 * shaped like a response. The SDK takes integer ids only within 2^53, so a larger one is refused too, but
 * answered with its exact digits.
 */
function triage(
  raw: JsonValue,
): { accept: JSONRPCMessage } | { refuse: RequestId | null; error: RpcError } | { drop: true } {
  if (!isJsonObject(raw)) {
    const why = Array.isArray(raw) ? "JSON-RPC batches are not supported" : "a message must be a JSON object";
    return refuse(null, ErrorCode.InvalidRequest, `invalid request: ${why}`);
  }
  const message = sdkMessage(raw) as JSONRPCMessage;
  if (JSONRPCMessageSchema.safeParse(message).success) return { accept: message };
  const answerable = "method" in raw ? "id" in raw : !("result" in raw || "error" in raw);
  if (!answerable) return { drop: true };
  const id = requestIdOf(raw);
  const issues = JSONRPCRequestSchema.safeParse(message).error?.issues ?? [];
  const envelopeIssue = issues.find((issue) => issue.path[0] !== "params");
  const issue = envelopeIssue ?? issues[0];
  const field = issue === undefined || issue.path.length === 0 ? "" : `${issue.path.join(".")}: `;
  const detail = `${field}${issue?.message ?? "not a JSON-RPC request"}`;
  return envelopeIssue === undefined
    ? refuse(id, ErrorCode.InvalidParams, `invalid params: ${detail}`)
    : refuse(id, ErrorCode.InvalidRequest, `invalid request: ${detail}`);
}

function refuse(id: RequestId | null, code: number, message: string) {
  return { refuse: id, error: { code, message } };
}

/**
 * The message's id, when a reply can carry it exactly: a string or an integer (an integer written as a float, e.g.
 * `1.0`, only within 2^53).
 */
function requestIdOf(message: JsonValue): RequestId | null {
  const id = isJsonObject(message) ? message.id : undefined;
  if (typeof id === "string" || typeof id === "bigint") return id;
  return typeof id === "number" && Number.isSafeInteger(id) ? id : null;
}
