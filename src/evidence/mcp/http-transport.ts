import { STATUS_CODES } from "node:http";
import type { JsonObject } from "../../json/value.js";
import type { McpProtocol } from "./config.js";
import {
  failure,
  INITIALIZED_NOTIFICATION,
  initializeCall,
  isServerMessage,
  MAX_MCP_RESPONSE_BYTES,
  type McpProviderFailure,
  type McpTransport,
  negotiatedVersion,
  parseMessage,
  type RpcCall,
  transientFailure,
} from "./protocol.js";

/*
 * A provider reached over HTTP: each call is one POST. For the `mcp` protocol this is MCP Streamable HTTP: the first
 * call runs the `initialize` handshake, the `mcp-session-id` the server hands out is sent back on every request,
 * and a `text/event-stream` answer carries the response as a `data:` event. Redirects are refused, not followed.
 * Error messages are fixed texts; the bearer token never appears in them.
 */

export interface HttpSettings {
  url: string;
  protocol: McpProtocol;
  bearerToken: string | null;
  requestTimeoutMs: number;
  /** Follow redirects as the reference's HTTP client does (undici drops `authorization` on a cross-origin hop). */
  followRedirects: boolean;
}

/** Statuses that say "try again later" rather than "this request is wrong". */
const TRANSIENT_STATUSES = new Set([429, 502, 503, 504]);

interface Session {
  id: string | null;
  protocolVersion: string | null;
}

type BodyReader<T> = (response: Response, signal: AbortSignal) => Promise<T>;

export class HttpTransport implements McpTransport {
  private session: Promise<Session> | null = null;

  constructor(private readonly settings: HttpSettings) {}

  async request(call: RpcCall): Promise<JsonObject> {
    const session = this.settings.protocol === "mcp" ? await this.openSession(call.correlationId) : null;
    return this.post(call.body, call.correlationId, session, readMessage);
  }

  async close(): Promise<void> {
    this.session = null;
  }

  /** The current session: one handshake shared by concurrent first calls, and a new one after a failure. */
  private openSession(correlationId: string | null): Promise<Session> {
    if (this.session === null) {
      const opening = this.initialize(correlationId);
      this.session = opening;
      opening.catch(() => {
        if (this.session === opening) this.session = null;
      });
    }
    return this.session;
  }

  private async initialize(correlationId: string | null): Promise<Session> {
    const session: Session = { id: null, protocolVersion: null };
    const call = initializeCall();
    session.protocolVersion = negotiatedVersion(await this.post(call.body, correlationId, session, readMessage));
    await this.post(INITIALIZED_NOTIFICATION, correlationId, session, discard);
    return session;
  }

  /** POSTs one message and reads the answer with `read`, all within the request timeout. */
  private async post<T>(
    body: string,
    correlationId: string | null,
    session: Session | null,
    read: BodyReader<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.settings.requestTimeoutMs);
    const sentSessionId = session?.id ?? null;
    try {
      const response = await this.send(body, this.headers(correlationId, session), controller.signal);
      if (session !== null && session.id === null) session.id = response.headers.get("mcp-session-id");
      if (!response.ok) {
        await discard(response);
        throw this.statusFailure(response.status, sentSessionId);
      }
      return await read(response, controller.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  private async send(body: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    try {
      return await fetch(this.settings.url, {
        method: "POST",
        headers,
        body,
        redirect: this.settings.followRedirects ? "follow" : "manual",
        signal,
      });
    } catch {
      throw transientFailure(signal.aborted ? "http request timed out" : "http request failed");
    }
  }

  private headers(correlationId: string | null, session: Session | null): Record<string, string> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    if (this.settings.bearerToken !== null) headers.authorization = `Bearer ${this.settings.bearerToken}`;
    if (correlationId !== null) headers["x-correlation-id"] = correlationId;
    if (session?.id) headers["mcp-session-id"] = session.id;
    if (session?.protocolVersion) headers["mcp-protocol-version"] = session.protocolVersion;
    return headers;
  }

  /** A 404 for a request that carried a session id means the server forgot the session: the next call opens one. */
  private statusFailure(status: number, sentSessionId: string | null): McpProviderFailure {
    const expired = status === 404 && sentSessionId !== null;
    if (expired) this.session = null;
    const reason = `http request failed with status ${statusText(status)}`;
    return expired || TRANSIENT_STATUSES.has(status) ? transientFailure(reason) : failure(reason);
  }
}

/** The status as the reference's HTTP client prints it, e.g. `503 Service Unavailable`. */
function statusText(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? "<unknown status code>"}`;
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

/** Reads the response message from the body (plain JSON, or the first response in an event stream), capped at 1 MiB. */
async function readMessage(response: Response, signal: AbortSignal): Promise<JsonObject> {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > MAX_MCP_RESPONSE_BYTES) {
    await discard(response);
    throw failure("http response too large");
  }
  const isEventStream = (response.headers.get("content-type") ?? "").toLowerCase().startsWith("text/event-stream");
  const collector = isEventStream ? new EventStreamCollector() : new BodyCollector();
  const reader = response.body?.getReader();
  const stopReading = () => reader?.cancel().catch(() => undefined);
  let received = 0;
  for (;;) {
    const chunk = reader === undefined ? null : await readChunk(reader, signal);
    if (chunk === null) return collector.finish();
    received += chunk.length;
    if (received > MAX_MCP_RESPONSE_BYTES) {
      await stopReading();
      throw failure("http response too large");
    }
    const message = collector.push(chunk);
    if (message !== null) {
      await stopReading();
      return message;
    }
  }
}

/** The next chunk of the body, or `null` at its end. */
async function readChunk(reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }, signal: AbortSignal) {
  try {
    const { done, value } = await reader.read();
    return done || value === undefined ? null : value;
  } catch {
    throw transientFailure(signal.aborted ? "http response timed out" : "http response read failed");
  }
}

interface MessageCollector {
  /** Takes the next body chunk; returns the response as soon as it is complete, else `null`. */
  push(chunk: Uint8Array): JsonObject | null;
  /** The response once the body has ended. */
  finish(): JsonObject;
}

/** A body that is the JSON-RPC response itself. */
class BodyCollector implements MessageCollector {
  private readonly chunks: Uint8Array[] = [];

  push(chunk: Uint8Array): null {
    this.chunks.push(chunk);
    return null;
  }

  finish(): JsonObject {
    return parseMessage(Buffer.concat(this.chunks));
  }
}

/**
 * A `text/event-stream` body: each event's `data:` lines form one JSON-RPC message. Server requests and
 * notifications sent before the response are skipped (an HTTP client cannot answer them on this stream).
 */
class EventStreamCollector implements MessageCollector {
  private readonly decoder = new TextDecoder();
  private pending = "";
  private data: string[] = [];

  push(chunk: Uint8Array): JsonObject | null {
    this.pending += this.decoder.decode(chunk, { stream: true });
    const lines = this.pending.split(/\r\n|\r|\n/);
    this.pending = lines.pop() ?? "";
    for (const line of lines) {
      const message = this.takeLine(line);
      if (message !== null) return message;
    }
    return null;
  }

  finish(): JsonObject {
    const message = this.takeLine(this.pending + this.decoder.decode()) ?? this.takeLine("");
    if (message === null) throw failure("invalid json-rpc response");
    return message;
  }

  private takeLine(line: string): JsonObject | null {
    if (line === "") return this.dispatch();
    if (line === "data" || line.startsWith("data:")) this.data.push(line.slice(5).replace(/^ /, ""));
    return null;
  }

  private dispatch(): JsonObject | null {
    const data = this.data.join("\n");
    this.data = [];
    if (data.trim() === "") return null;
    const message = parseMessage(data);
    return isServerMessage(message) ? null : message;
  }
}
